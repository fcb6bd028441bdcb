"""Video uploads (tus 1.0), probing, access and playback grants through the HTTP API on real
PostgreSQL, with real ffmpeg/ffprobe. (The whole pipeline with the transcoder and the gateway is
in test_video.py.)"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from lmsd.app import create_app
from lmsd.contracts.v1 import envelope_pb2
from lmsd.events.connection import pg_connect
from lmsd.media import signing
from lmsd.settings import Pathway
from tests.api import admin, client, course, person
from tests.db import Database
from tests.media import TUS, create, make_clip, patch, upload, uploaded_video

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    good = make_clip(d / "good.mp4", 2.0)
    truncated = d / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    text_file = d / "notes.mp4"
    text_file.write_text("These are my lecture notes, not a video.\n" * 50)
    return {
        "good": good,
        "truncated": truncated,
        "text": text_file,
        "silent": make_clip(d / "silent.mp4", 2.0, audio=False),
        "portrait": make_clip(d / "portrait.mp4", 1.0, "360x640"),
    }


async def _outbox(database: Database, video_id: str) -> list[Any]:
    conn = await pg_connect(database.settings, database.secrets)
    try:
        return list(await conn.fetch("SELECT subject, payload FROM outbox WHERE aggregate_id = $1 ORDER BY seq", uuid.UUID(video_id)))
    finally:
        await conn.close()


async def test_resumable_upload_becomes_a_probed_video_with_its_event(database: Database, clips: dict[str, Path]) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        crs = await course(c, teacher)
        data = clips["good"].read_bytes()
        # OPTIONS tells what the server supports
        r = await c.options("/api/v1/uploads")
        assert r.status_code == 204 and r.headers["tus-version"] == "1.0.0"
        assert set(r.headers["tus-extension"].split(",")) == {"creation", "termination", "checksum", "expiration"}
        assert "sha1" in r.headers["tus-checksum-algorithm"]
        r = await create(c, teacher.h, crs["id"], len(data), "Week 1 – intro.mp4", title="Week 1", language="en")
        assert r.status_code == 201 and r.headers["tus-resumable"] == "1.0.0", r.text
        location = r.headers["location"]
        assert location.startswith("/api/v1/uploads/") and r.headers["upload-expires"]
        # first half, then the connection "drops"; HEAD says where to resume
        half = len(data) // 2
        r = await patch(c, teacher.h, location, 0, data[:half])
        assert r.status_code == 204 and r.headers["upload-offset"] == str(half)
        r = await c.head(location, headers={**teacher.h, **TUS})
        assert r.status_code == 200 and r.headers["upload-offset"] == str(half) and r.headers["upload-length"] == str(len(data))
        assert r.headers["cache-control"] == "no-store"
        # resuming at a wrong offset is refused and changes nothing
        r = await patch(c, teacher.h, location, half - 10, data[half - 10:])
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM) and "offset" in r.json()["detail"]
        # a chunk whose checksum does not match is dropped whole (460)
        bad = {**teacher.h, **TUS, "upload-offset": str(half), "content-type": "application/offset+octet-stream",
               "upload-checksum": "sha1 " + base64.b64encode(hashlib.sha1(b"other").digest()).decode()}
        r = await c.patch(location, headers=bad, content=data[half:])
        assert r.status_code == 460 and "checksum" in r.json()["detail"]
        assert (await c.head(location, headers={**teacher.h, **TUS})).headers["upload-offset"] == str(half)
        r = await patch(c, teacher.h, location, half, data[half:])
        assert r.status_code == 204, r.text
        video_id = r.headers["lmsd-video-id"]
        assert location.endswith(video_id)  # the video keeps the upload's id
        # the upload is done: its URL is gone, the source is kept for the transcoder
        assert (await c.head(location, headers={**teacher.h, **TUS})).status_code == 404
        assert (database.settings.data_dir / "videos" / video_id / "source").read_bytes() == data
        assert not (database.settings.data_dir / "uploads" / video_id).exists()
        r = await c.get(f"/api/v1/videos/{video_id}", headers=teacher.h)
        v = r.json()
        assert r.status_code == 200 and v["status"] == "uploaded" and v["title"] == "Week 1" and v["language"] == "en"
        assert (v["width"], v["height"], v["duration_s"]) == (320, 240, 2.0) and v["filename"] == "Week 1 – intro.mp4"
        listed = (await c.get(f"/api/v1/courses/{crs['id']}/videos", headers=teacher.h)).json()["items"]
        assert [x["id"] for x in listed] == [video_id]
        # one video_uploaded event, in the outbox of the same transaction, with the probe
        rows = await _outbox(database, video_id)
        assert [r["subject"].rsplit(".", 1)[1] for r in rows] == ["video_uploaded"]
        event = envelope_pb2.Event.FromString(rows[0]["payload"])
        body = event.video_uploaded
        assert event.aggregate == "video" and body.course_id == crs["id"] and body.size_bytes == len(data)
        assert body.source_path == f"videos/{video_id}/source" and body.output_dir == f"media/videos/{video_id}/hls"
        assert body.probe.video_codec == "h264" and body.probe.has_audio and body.probe.audio_codec == "aac"
        # not transcoded yet: no playback, a clear 409
        r = await c.get(f"/api/v1/videos/{video_id}/playback", headers=teacher.h)
        assert r.status_code == 409 and "not ready" in r.json()["detail"]


async def test_bad_uploads_are_refused_with_reasons_and_leave_nothing(database: Database, clips: dict[str, Path]) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        learner = await person(c, adm, "learner")
        crs = await course(c, teacher)
        uploads_dir = database.settings.data_dir / "uploads"

        async def refused(path: Path, **kw: str) -> dict[str, Any]:
            before = set(uploads_dir.iterdir()) if uploads_dir.exists() else set()
            r = await upload(c, teacher.h, crs["id"], path, **kw)
            assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
            assert "removed" in r.json()["detail"]
            after = set(uploads_dir.iterdir())
            assert after <= before, f"left behind: {after - before}"
            return dict(r.json())

        assert "not a video file" in (await refused(clips["text"]))["detail"]
        assert "truncated" in (await refused(clips["truncated"]))["detail"]
        # zero length, too large, wrong type, missing metadata, unknown course
        r = await create(c, teacher.h, crs["id"], 0)
        assert r.status_code == 422 and "empty" in r.json()["detail"]
        r = await create(c, teacher.h, crs["id"], 10 * 1024**4)
        assert r.status_code == 413 and "largest" in r.json()["detail"]
        r = await create(c, teacher.h, crs["id"], 1000, "slides.pdf", "application/pdf")
        assert r.status_code == 415 and "application/pdf" in r.json()["detail"]
        r = await c.post("/api/v1/uploads", headers={**teacher.h, **TUS, "upload-length": "100"})
        assert r.status_code == 422 and "course_id" in r.json()["detail"]
        r = await c.post("/api/v1/uploads", headers={**teacher.h, **TUS, "upload-length": "100", "upload-metadata": "course_id !!!"})
        assert r.status_code == 400 and "base64" in r.json()["detail"]
        r = await create(c, teacher.h, str(uuid.uuid4()), 1000)
        assert r.status_code == 404
        r = await c.post("/api/v1/uploads", headers={**teacher.h, **TUS})
        assert r.status_code == 400 and "Upload-Length" in r.json()["detail"]
        # protocol: no Tus-Resumable, wrong content type, a body past the declared length
        r = await c.post("/api/v1/uploads", headers={**teacher.h, "upload-length": "100"})
        assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
        r = await create(c, teacher.h, crs["id"], 100)
        location = r.headers["location"]
        r = await c.patch(location, headers={**teacher.h, **TUS, "upload-offset": "0", "content-type": "application/json"}, content=b"{}")
        assert r.status_code == 415
        r = await patch(c, teacher.h, location, 0, b"x" * 101, checksum=False)
        assert r.status_code == 413
        assert (await c.head(location, headers={**teacher.h, **TUS})).headers["upload-offset"] == "0"
        # only its owner sees an upload; learners may not upload; termination frees the space
        assert (await c.head(location, headers={**learner.h, **TUS})).status_code == 404
        r = await create(c, learner.h, crs["id"], 100)
        assert r.status_code == 403
        r = await c.delete(location, headers={**teacher.h, **TUS})
        assert r.status_code == 204
        assert (await c.head(location, headers={**teacher.h, **TUS})).status_code == 404
        assert not (uploads_dir / location.rsplit("/", 1)[1]).exists()


async def test_video_access_follows_the_course_and_lessons_link_own_videos(database: Database, clips: dict[str, Path]) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        other_teacher = await person(c, adm, "instructor")
        learner = await person(c, adm, "learner")
        crs = await course(c, teacher)
        other = await course(c, other_teacher)
        video_id = await uploaded_video(c, teacher.h, crs["id"], clips["portrait"])
        v = (await c.get(f"/api/v1/videos/{video_id}", headers=teacher.h)).json()
        assert (v["width"], v["height"]) == (360, 640)
        # not enrolled: the video does not exist for the learner
        assert (await c.get(f"/api/v1/videos/{video_id}", headers=learner.h)).status_code == 404
        assert (await c.get(f"/api/v1/videos/{video_id}", headers=other_teacher.h)).status_code == 404
        assert (await c.post(f"/api/v1/courses/{crs['id']}/enrol", headers=learner.h)).status_code == 201
        assert (await c.get(f"/api/v1/videos/{video_id}", headers=learner.h)).status_code == 200
        # learners watch but do not manage
        r = await c.patch(f"/api/v1/videos/{video_id}", headers=learner.h, json={"title": "mine"})
        assert r.status_code == 403
        r = await c.patch(f"/api/v1/videos/{video_id}", headers=teacher.h, json={"title": "Portrait demo", "language": "fr"})
        assert r.status_code == 200 and r.json()["title"] == "Portrait demo" and r.json()["language"] == "fr"
        r = await c.patch(f"/api/v1/videos/{video_id}", headers=teacher.h, json={"language": None})
        assert r.json()["language"] == "en"
        r = await c.patch(f"/api/v1/videos/{video_id}", headers=teacher.h, json={"language": "not a tag"})
        assert r.status_code == 400
        # a lesson may play a video of its own course only
        module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "W1"})).json()
        r = await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json={"title": "Lecture", "kind": "video", "video_id": video_id})
        assert r.status_code == 201 and r.json()["video_id"] == video_id
        other_module = (await c.post(f"/api/v1/courses/{other['id']}/modules", headers=other_teacher.h, json={"title": "W1"})).json()
        r = await c.post(f"/api/v1/modules/{other_module['id']}/lessons", headers=other_teacher.h, json={"title": "Stolen", "kind": "video", "video_id": video_id})
        assert r.status_code == 422 and "video_id" in r.json()["detail"]


async def make_ready(database: Database, video_id: str) -> None:
    """What the media projection writes when the transcoder reports a finished ladder."""
    renditions = [
        {"name": "240p", "width": 426, "height": 240, "bandwidth": 600000, "average_bandwidth": 500000,
         "codecs": "avc1.64001e", "playlist": "240p/index.m3u8", "remuxed": False},
        {"name": "360p", "width": 640, "height": 360, "bandwidth": 1100000, "average_bandwidth": 900000,
         "codecs": "avc1.64001e", "playlist": "360p/index.m3u8", "remuxed": True},
    ]
    audio = {"name": "audio", "width": 0, "height": 0, "bandwidth": 140000, "average_bandwidth": 130000,
             "codecs": "mp4a.40.2", "playlist": "audio/index.m3u8", "remuxed": False}
    conn = await pg_connect(database.settings, database.secrets)
    try:
        await conn.execute(
            "UPDATE videos SET status = 'ready', progress = 100, renditions = $1, audio = $2, "
            "poster = 'poster.jpg', sprite_vtt = 'sprite.vtt' WHERE id = $3",
            renditions, audio, uuid.UUID(video_id),
        )
    finally:
        await conn.close()


async def test_playback_grant_master_playlist_and_content_steering(database: Database, clips: dict[str, Path], tmp_path: Path) -> None:
    key_file = tmp_path / "cdn-b.key"
    key_file.write_text("a-different-key-for-cdn-b-0123456789")
    media = database.settings.media.model_copy(update={
        "pathways": [
            Pathway(id="cdn-eu", base_url="https://eu.cdn.example/media/", regions=["eu"]),
            Pathway(id="cdn-b", base_url="https://b.cdn.example/lmsd/media/", signing="lmsd-hmac", key_file=str(key_file), regions=["us"]),
            Pathway(id="cdn-open", base_url="https://open.cdn.example/media/", signing="none"),
        ],
        "region_networks": {"eu": ["10.1.0.0/16"], "us": ["10.2.0.0/16", "2001:db8::/32"]},
    })
    settings = database.settings.model_copy(update={"media": media})
    from litestar.testing import AsyncTestClient

    app = create_app(settings, database.secrets)
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        adm = await admin(c, database)  # type: ignore[arg-type]
        teacher = await person(c, adm, "instructor")  # type: ignore[arg-type]
        learner = await person(c, adm, "learner")  # type: ignore[arg-type]
        crs = await course(c, teacher)  # type: ignore[arg-type]
        video_id = await uploaded_video(c, teacher.h, crs["id"], clips["good"])  # type: ignore[arg-type]
        await make_ready(database, video_id)
        assert (await c.get(f"/api/v1/videos/{video_id}/playback", headers=learner.h)).status_code == 404
        await c.post(f"/api/v1/courses/{crs['id']}/enrol", headers=learner.h)
        r = await c.get(f"/api/v1/videos/{video_id}/playback", headers=learner.h)
        assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
        grant = r.json()
        assert grant["master_url"].startswith(f"/api/v1/media/videos/{video_id}/master.m3u8?exp=")
        assert grant["poster_url"].startswith(f"/media/videos/{video_id}/hls/poster.jpg?")
        # the master playlist needs no account, only the signature (players fetch it by URL)
        r = await c.get(grant["master_url"], headers={"x-lmsd-client-ip": "10.2.3.4"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.apple.mpegurl"), r.text
        master = r.text
        assert master.startswith("#EXTM3U\n#EXT-X-VERSION:7\n")
        steering = next(line for line in master.splitlines() if line.startswith("#EXT-X-CONTENT-STEERING:"))
        assert f'SERVER-URI="/api/v1/media/steering/{video_id}?' in steering and 'PATHWAY-ID="cdn-b"' in steering
        variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
        assert len(variants) == 8  # 2 renditions × 4 pathways
        for pathway in ("origin", "cdn-eu", "cdn-b", "cdn-open"):
            mine = [v for v in variants if f'PATHWAY-ID="{pathway}"' in v]
            assert len(mine) == 2 and f'AUDIO="aud-{pathway}"' in mine[0]
            assert 'CODECS="avc1.64001e,mp4a.40.2"' in mine[0] and "RESOLUTION=426x240" in mine[0] and "BANDWIDTH=600000" in mine[0]
        uris = [line for line in master.splitlines() if line and not line.startswith("#")]
        origin = [u for u in uris if u.startswith(f"/media/videos/{video_id}/hls/")]
        assert len(origin) == 2 and all("&sig=" in u for u in origin)
        assert any(u.startswith(f"https://eu.cdn.example/media/videos/{video_id}/hls/240p/index.m3u8?exp=") for u in uris)
        assert any(u == f"https://open.cdn.example/media/videos/{video_id}/hls/360p/index.m3u8" for u in uris)
        # each lmsd-hmac pathway signs with its own key: the grant checks out with that key only
        b_uri = next(u for u in uris if u.startswith("https://b.cdn.example/lmsd/media/"))
        query = dict(p.split("=", 1) for p in b_uri.split("?", 1)[1].split("&"))
        scope = f"/media/videos/{video_id}/"
        assert signing.verify_scope(key_file.read_text(), scope, int(query["exp"]), query["sig"], time.time())
        assert not signing.verify_scope(database.secrets.media_signing_key, scope, int(query["exp"]), query["sig"], time.time())
        # steering: the client's region first, then the rest in configured order
        steer_url = steering.split('SERVER-URI="', 1)[1].split('"', 1)[0]
        r = await c.get(steer_url, headers={"x-lmsd-client-ip": "10.1.9.9"})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        manifest = r.json()
        assert manifest["VERSION"] == 1 and manifest["TTL"] == 300 and manifest["RELOAD-URI"] == steer_url
        assert manifest["PATHWAY-PRIORITY"] == ["cdn-eu", "origin", "cdn-b", "cdn-open"]
        r = await c.get(steer_url, headers={"x-lmsd-client-ip": "2001:db8::1"})
        assert r.json()["PATHWAY-PRIORITY"] == ["cdn-b", "origin", "cdn-eu", "cdn-open"]
        # a pathway failing its health probe goes to the end, whatever the region
        app.state.pathway_health.failing.add("cdn-eu")
        r = await c.get(steer_url, headers={"x-lmsd-client-ip": "10.1.9.9"})
        assert r.json()["PATHWAY-PRIORITY"] == ["origin", "cdn-b", "cdn-open", "cdn-eu"]
        # forged, expired, other-video and unsigned requests get nothing
        forged = grant["master_url"].replace("sig=", "sig=x")
        assert (await c.get(forged)).status_code == 403
        other = grant["master_url"].replace(video_id, str(uuid.uuid4()), 1)
        assert (await c.get(other)).status_code == 403
        assert (await c.get(f"/api/v1/media/videos/{video_id}/master.m3u8")).status_code == 403
        past = int(time.time()) - 10
        expired = f"/api/v1/media/videos/{video_id}/master.m3u8?{signing.scope_query(database.secrets.media_signing_key, scope, past)}"
        r = await c.get(expired)
        assert r.status_code == 403 and "expired" in r.json()["detail"]
