"""The video pipeline on a running campus (real NATS, PostgreSQL, ffmpeg, lmsd-transcoder and the
gateway): tus upload → probe → video_uploaded → transcoder (HLS ladder) → media projection →
transcription (pocketsphinx) → subtitles → signed adaptive playback through the gateway, read
by ffprobe over HTTP; edge-case sources; a transcoder killed -9 mid-job."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.learning import client, setup, wait_progress
from tests.media import FFMPEG, make_clip, uploaded_video, wait_video
from tests.media.test_transcribe import LECTURE, MIN_ACCURACY, SPEED, VOICE, word_accuracy
from tests.support import Campus, nats_connect

pytestmark = pytest.mark.slow



def speech_clip(path: Path) -> Path:
    """A lecture-like clip: espeak-ng speech over a 640x360 test pattern, H.264/AAC at a modest
    bitrate with a keyframe every 4 s, as recorders make them (web compatible: its top rendition
    is remuxed)."""
    if path.exists():
        return path
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", VOICE, "-s", SPEED, "-w", str(wav), LECTURE], check=True, timeout=60)
    subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-i", str(wav),
         "-c:v", "libx264", "-preset", "veryfast", "-g", "100", "-b:v", "500k", "-maxrate", "600k", "-bufsize", "1200k",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart", str(path), "-y"],
        check=True, timeout=120,
    )
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video-clips")
    return {
        "speech": speech_clip(d / "speech.mp4"),
        "silent_portrait": make_clip(d / "portrait.mp4", 3.0, "720x1280", audio=False),
        "uhd": make_clip(d / "uhd.mp4", 1.0, "3840x2160"),
        # long enough to be killed mid-way; high bitrate so it is re-encoded, not remuxed; 360p, so
        # its ladder is two renditions (the 720p one cost a minute of CPU, twice: killed, then redone)
        "long": make_clip(d / "long.mp4", 40.0, "640x360", codec=("-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt", "yuv420p")),
    }


def _pid(campus: Campus, component: str) -> int:
    state = json.loads((campus.data_dir / "run" / "state.json").read_text())
    return int(state["components"][component]["pid"])


async def _subjects(campus: Campus, video_id: str) -> list[str]:
    """Every subject on LMSD_EVENTS about this video (both aggregates)."""
    nc = await nats_connect(campus)
    try:
        js = nc.jetstream()
        found: list[str] = []
        for aggregate in ("video", "transcode"):
            sub = await js.pull_subscribe(f"lmsd.*.{aggregate}.{video_id}.>", stream="LMSD_EVENTS")
            while True:
                try:
                    msgs = await sub.fetch(100, timeout=1)
                except Exception:  # noqa: BLE001 - nats' timeout: nothing more
                    break
                found += [m.subject.rsplit(".", 1)[1] for m in msgs]
            await sub.unsubscribe()
        return found
    finally:
        await nc.close()


def _uris(playlist: str) -> list[str]:
    uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    uris += re.findall(r'URI="([^"]+)"', playlist)
    return uris


async def test_upload_to_adaptive_playback_with_subtitles(shared_campus: Campus, clips: dict[str, Path]) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        teacher, learner = s.teacher, s.learners[0]
        video_id = await uploaded_video(c, teacher.h, s.course["id"], clips["speech"], title="Vectors")
        v = await wait_video(c, teacher.h, video_id, lambda v: v["status"] in ("ready", "failed"), 240)
        assert v["status"] == "ready", v
        assert v["progress"] == 100 and v["error"] == ""
        assert [(r["name"], r["width"], r["height"]) for r in v["renditions"]] == [("240p", 426, 240), ("360p", 640, 360)]
        remuxed = [r["remuxed"] for r in v["renditions"]]
        assert all(r["codecs"].startswith("avc1.") for r in v["renditions"])
        v = await wait_video(c, teacher.h, video_id, lambda v: v["transcript_status"] != "pending", 240)
        assert v["transcript_status"] == "ready", v
        transcript = (await c.get(f"/api/v1/videos/{video_id}/transcript", headers=teacher.h)).json()
        assert transcript["source"] == "auto" and transcript["revision"] == 1 and transcript["model"].startswith("pocketsphinx")
        heard = " ".join(cue["text"] for cue in transcript["cues"])
        assert word_accuracy(LECTURE, heard) >= MIN_ACCURACY, heard  # what test_transcribe measured
        # the learner plays it: a signed grant, then everything through the gateway without a token
        r = await c.get(f"/api/v1/videos/{video_id}/playback", headers=learner.h)
        assert r.status_code == 200, r.text
        grant = r.json()
        assert [x["language"] for x in grant["subtitles"]] == ["en"]
        anonymous = httpx.AsyncClient(base_url=shared_campus.url, timeout=30)
        async with anonymous:
            master = await anonymous.get(grant["master_url"])
            assert master.status_code == 200 and master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
            text = master.text
            assert '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES' in text
            assert '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud"' in text
            variants = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
            assert len(variants) == 2 and all('SUBTITLES="subs"' in x and 'AUDIO="aud"' in x for x in variants)
            for uri in _uris(text):
                playlist = await anonymous.get(uri)
                assert playlist.status_code == 200, (uri, playlist.text)
                assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
                segments = _uris(playlist.text)
                assert segments and "#EXT-X-ENDLIST" in playlist.text
                # relative URIs of a scoped playlist were signed by the gateway
                base = uri.split("?", 1)[0].rsplit("/", 1)[0]
                first = segments[0] if segments[0].startswith("/") else f"{base}/{segments[0]}"
                part = await anonymous.get(first, headers={"range": "bytes=0-99"})
                assert part.status_code == 206 and len(part.content) == min(100, int(part.headers["content-range"].rsplit("/", 1)[1]))
            # the segment files are immutable: cacheable; a forged signature gets nothing
            seg = await anonymous.get(uri.replace("sig=", "sig=A"))
            assert seg.status_code == 403
            poster = await anonymous.get(grant["poster_url"])
            assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"
            thumbs = await anonymous.get(grant["thumbnails_url"])
            assert thumbs.status_code == 200 and thumbs.text.startswith("WEBVTT") and "#xywh=" in thumbs.text
            vtt = await anonymous.get(grant["subtitles"][0]["url"])
            assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
        # ffprobe reads the whole ladder from the master playlist over HTTP
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "json",
             shared_campus.url.rstrip("/") + grant["master_url"]],
            capture_output=True, text=True, timeout=120,
        )
        assert probe.returncode == 0, probe.stderr
        streams = json.loads(probe.stdout)["streams"]
        sizes = {(st["width"], st["height"]) for st in streams if st["codec_type"] == "video"}
        assert {(426, 240), (640, 360)} <= sizes and any(st["codec_type"] == "audio" for st in streams)
        # an instructor corrects the transcript: it replaces the subtitles and is published again
        edited = "WEBVTT\n\n00:00:00.500 --> 00:00:03.000\nWelcome to linear algebra.\n\n00:00:03.000 --> 00:00:06.000\nToday: vectors and matrices.\n"
        r = await c.put(f"/api/v1/videos/{video_id}/transcript", headers={**teacher.h, "content-type": "text/vtt"}, content=edited)
        assert r.status_code == 200, r.text
        assert r.json()["revision"] == 2 and r.json()["source"] == "edited" and len(r.json()["cues"]) == 2
        segment_one = (shared_campus.data_dir / "media" / "videos" / video_id / "subtitles" / "en" / "seg_00001.vtt").read_text()
        assert "Welcome to linear algebra." in segment_one
        r = await c.put(f"/api/v1/videos/{video_id}/transcript", headers={**teacher.h, "content-type": "text/vtt"},
                        content="WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n")
        assert r.status_code == 422 and "line" in r.json()["detail"]
        r = await c.put(f"/api/v1/videos/{video_id}/transcript", headers={**learner.h, "content-type": "text/vtt"}, content=edited)
        assert r.status_code == 403
        # asked to transcribe again, the worker makes revision 3 from the audio
        r = await c.post(f"/api/v1/videos/{video_id}/transcribe", headers=teacher.h, json={})
        assert r.status_code == 202
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            t = (await c.get(f"/api/v1/videos/{video_id}/transcript", headers=teacher.h)).json()
            if t["revision"] == 3:
                break
            await asyncio.sleep(1)
        assert t["revision"] == 3 and t["source"] == "auto"
        subjects = await _subjects(shared_campus, video_id)
        assert subjects.count("video_uploaded") == 1 and subjects.count("video_transcoded") == 1
        assert subjects.count("transcript_published") == 3 and subjects.count("transcription_requested") == 1
        assert "transcode_progress" in subjects
        # watching is a learning event of the enrolment (lesson integration)
        outline = (await c.get(f"/api/v1/courses/{s.course['id']}", headers=teacher.h)).json()
        module_id = outline["modules"][0]["id"]
        lesson = (await c.post(
            f"/api/v1/modules/{module_id}/lessons", headers=teacher.h,
            json={"title": "Vectors", "kind": "video", "video_id": video_id},
        )).json()
        r = await c.post("/api/v1/learning/events", headers=learner.h, json={"events": [
            {"enrolment_id": s.enrolments[0], "type": "video_watched", "lesson_id": lesson["id"], "segments": [[0, 4000]]}]})
        assert r.status_code == 202, r.text
        p = await wait_progress(c, learner, s.enrolments[0], lambda p: any(x["lesson_id"] == lesson["id"] for x in p["lessons"]))
        assert next(x for x in p["lessons"] if x["lesson_id"] == lesson["id"])["watched_ms"] == 4000
        assert remuxed == [False, True]  # web-compatible top: copied, not re-encoded


async def test_sources_without_audio_portrait_and_4k(shared_campus: Campus, clips: dict[str, Path]) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=0)
        teacher = s.teacher
        portrait = await uploaded_video(c, teacher.h, s.course["id"], clips["silent_portrait"])
        uhd = await uploaded_video(c, teacher.h, s.course["id"], clips["uhd"])
        v = await wait_video(c, teacher.h, portrait, lambda v: v["status"] != "uploaded" and v["status"] != "transcoding", 300)
        assert v["status"] == "ready", v
        # a phone video is laddered by its short side and stays portrait
        assert [(r["name"], r["width"], r["height"]) for r in v["renditions"]] == [
            ("240p", 240, 426), ("360p", 360, 640), ("480p", 480, 854), ("720p", 720, 1280)]
        v = await wait_video(c, teacher.h, portrait, lambda v: v["transcript_status"] != "pending", 120)
        assert v["transcript_status"] == "failed" and "audio" in v["transcript_error"]
        grant = (await c.get(f"/api/v1/videos/{portrait}/playback", headers=teacher.h)).json()
        master = (await c.get(grant["master_url"])).text
        assert "TYPE=AUDIO" not in master and "AUDIO=" not in master and "mp4a" not in master
        v = await wait_video(c, teacher.h, uhd, lambda v: v["status"] not in ("uploaded", "transcoding"), 300)
        assert v["status"] == "ready", v
        assert [r["name"] for r in v["renditions"]] == ["240p", "360p", "480p", "720p", "1080p"]
        assert (v["renditions"][-1]["width"], v["renditions"][-1]["height"]) == (1920, 1080)


async def test_transcoder_killed_mid_job_finishes_the_job_once(shared_campus: Campus, clips: dict[str, Path]) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=0)
        video_id = await uploaded_video(c, s.teacher.h, s.course["id"], clips["long"])
        await wait_video(c, s.teacher.h, video_id, lambda v: v["status"] == "transcoding" and v["progress"] >= 5, 240)
        before = _pid(shared_campus, "transcoder-0")
        ffmpeg_pids = subprocess.run(["pgrep", "-f", f"videos/{video_id}/source"], capture_output=True, text=True).stdout.split()
        assert ffmpeg_pids, "ffmpeg should be running for the job"
        os.kill(before, signal.SIGKILL)
        v = await wait_video(c, s.teacher.h, video_id, lambda v: v["status"] in ("ready", "failed"), 600)
        assert v["status"] == "ready", v
        assert _pid(shared_campus, "transcoder-0") != before  # the supervisor restarted it
        # the killed attempt's ffmpeg died with it; its partial output is gone; one ladder, one event
        for pid in ffmpeg_pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        folder = shared_campus.data_dir / "media" / "videos" / video_id
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith("hls")) == ["hls"]
        subjects = await _subjects(shared_campus, video_id)
        assert subjects.count("video_transcoded") == 1, subjects
        failed = [x for x in subjects if x == "transcode_failed"]
        assert not failed
        assert v["renditions"] and v["duration_s"] == pytest.approx(40.0, abs=0.2)


async def test_a_dead_job_is_listed_with_its_reason_and_can_be_queued_again(shared_campus: Campus) -> None:
    """A job the transcoder cannot even decode goes to the dead-letter stream at once; `lmsd
    events dlq replay` puts it back on the work queue (where it fails the same way, here)."""
    campus_id, video_id = str(uuid.uuid4()), str(uuid.uuid4())
    nc = await nats_connect(shared_campus)
    try:
        ack = await nc.jetstream().publish(f"lmsd.{campus_id}.video.{video_id}.video_uploaded", b"not a protobuf")
        assert ack.stream == "LMSD_EVENTS"
    finally:
        await nc.close()

    def transcode_letters() -> list[dict[str, Any]]:
        out = shared_campus.lmsd("events", "dlq", "--json")
        assert out.returncode == 0, out.stderr
        return [d for d in json.loads(out.stdout) if d["consumer"] == "transcode" and video_id in d["subject"]]

    deadline = time.monotonic() + 60
    while not (letters := transcode_letters()) and time.monotonic() < deadline:
        await asyncio.sleep(1)
    assert len(letters) == 1, letters
    assert letters[0]["reason"]
    out = shared_campus.lmsd("events", "dlq", "replay", str(letters[0]["seq"]))
    assert out.returncode == 0 and "queued again" in out.stdout, out.stdout + out.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = transcode_letters()
        if again and again[0]["seq"] != letters[0]["seq"]:
            break
        await asyncio.sleep(1)
    assert len(again) == 1 and again[0]["seq"] != letters[0]["seq"], again
