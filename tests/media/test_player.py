"""The watch page's player in a real Chromium: HLS with hls.js, subtitles, quality menu, progress.

The fixture is made with ffmpeg in the transcoder's layout (``hls/<name>/index.m3u8``,
``init.mp4``, ``seg_%05d.m4s``, audio in ``hls/audio``, WebVTT segments in
``subtitles/<lang>/``) and served with the page's CSP by a small threaded HTTP server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from lmsd.portal.player import Transcoding, render_watch_page
from lmsd.portal.static_files import TYPES, resolve

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]  # the browser and browser_page fixtures

VIDEO = "/media/videos/v1/"
PROGRESS = "/api/v1/videos/v1/progress"
STATUS = "/api/v1/videos/v2/status"
CSRF = "csrf-token-123"
FIRST_CUE = "Hello from lmsd"
MEDIA_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
}


def _encode(out: Path) -> None:
    """20 s, two H.264 renditions, AAC audio on its own: 2 s fMP4 segments; a poster."""
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    hls = out / "hls"
    for name in ("240p", "360p", "audio"):
        (hls / name).mkdir(parents=True)

    def ladder(name: str) -> list[str]:
        return [
            "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", "init.mp4", "-start_number", "1",
            "-hls_segment_filename", str(hls / name / "seg_%05d.m4s"), str(hls / name / "index.m3u8"),
        ]  # fmt: skip

    x264 = ["-c:v", "libx264", "-profile:v", "main", "-level", "3.0", "-preset", "ultrafast", "-g", "48",
            "-keyint_min", "48", "-sc_threshold", "0", "-pix_fmt", "yuv420p"]  # fmt: skip
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24:duration=20",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
         "-filter_complex", "[0:v]split=3[a][b][c];[a]scale=426:240[v240];[b]copy[v360];[c]trim=end_frame=1[poster]",
         "-map", "[v240]", *x264, "-b:v", "300k", *ladder("240p"),
         "-map", "[v360]", *x264, "-b:v", "600k", *ladder("360p"),
         "-map", "1:a", "-c:a", "aac", "-b:a", "64k", "-ac", "2", *ladder("audio"),
         "-map", "[poster]", "-frames:v", "1", str(hls / "poster.jpg")],
        check=True, timeout=120,
    )  # fmt: skip
    (hls / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",'
        'URI="audio/index.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,'
        'FORCED=NO,URI="../subtitles/en/index.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240,CODECS="avc1.4d401e,mp4a.40.2",'
        'AUDIO="aud",SUBTITLES="subs"\n240p/index.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=750000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2",'
        'AUDIO="aud",SUBTITLES="subs"\n360p/index.m3u8\n'
    )
    subs = out / "subtitles" / "en"
    subs.mkdir(parents=True)
    cues = [("00:00:00.500", "00:00:05.500", FIRST_CUE), ("00:00:06.000", "00:00:07.500", "The second cue")]
    cues += [("", "", "")] * 3  # segments without a cue
    playlist = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:1",
                "#EXT-X-PLAYLIST-TYPE:VOD"]  # fmt: skip
    for n, (start, end, text) in enumerate(cues, start=1):
        cue = f"{start} --> {end}\n{text}\n" if text else ""
        (subs / f"seg_{n:05d}.vtt").write_text(f"WEBVTT\n\n{cue}")
        playlist += ["#EXTINF:4.000,", f"seg_{n:05d}.vtt"]
    (subs / "index.m3u8").write_text("\n".join([*playlist, "#EXT-X-ENDLIST"]) + "\n")


@dataclass
class Site:
    """What the test server serves and what it saw."""

    media: Path
    page: str = ""
    csp: str = ""
    fail_posts: int = 0  # answer this many progress POSTs with 503
    statuses: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    status_polls: int = 0
    page_loads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send(
            self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/favicon.ico":  # the browser asks on its own
                self.send(204, b"", "image/x-icon")
            elif path == "/watch":
                with site.lock:
                    site.page_loads += 1
                self.send(200, site.page.encode(), "text/html; charset=utf-8",
                          {"Content-Security-Policy": site.csp, "Cache-Control": "no-store"})  # fmt: skip
            elif path == STATUS:
                with site.lock:
                    site.status_polls += 1
                    status = site.statuses.pop(0) if len(site.statuses) > 1 else site.statuses[0]
                self.send(200, json.dumps(status).encode(), "application/json", {"Cache-Control": "no-store"})
            elif (
                path.startswith("/static/")
                and (file := resolve(path.removeprefix("/static/")))
                and file.is_file()
            ):
                self.send(200, file.read_bytes(), TYPES[file.suffix])
            elif path.startswith(VIDEO) and ".." not in path:
                file = site.media / path.removeprefix(VIDEO)
                if file.is_file() and file.suffix in MEDIA_TYPES:
                    self.send(200, file.read_bytes(), MEDIA_TYPES[file.suffix])
                else:
                    self.send(404, b"not found", "text/plain")
            else:
                self.send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if urlsplit(self.path).path != PROGRESS:
                self.send(404, b"not found", "text/plain")
                return
            with site.lock:
                failing = site.fail_posts > 0
                site.fail_posts -= int(failing)
                site.posts.append(
                    {
                        "json": json.loads(body),
                        "csrf": self.headers.get("X-CSRF-Token"),
                        "cookie": self.headers.get("Cookie", ""),
                        "type": self.headers.get("Content-Type", ""),
                        "ok": not failing,
                        "at": time.monotonic(),
                    }
                )
            if failing:
                self.send(503, b'{"title":"Unavailable"}', "application/problem+json")
            else:
                self.send(204, b"", "application/json")

    return Handler


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("video")
    _encode(out)
    return out


@pytest.fixture
def site(media: Path) -> Iterator[tuple[Site, str]]:
    site = Site(media=media)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _covered(segments: list[list[float]], start: float, end: float, slack: float = 0.3) -> bool:
    return any(s <= start + slack and e >= end - slack for s, e in segments)


def _merge(segments: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for s, e in sorted(segments):
        if out and s <= out[-1][1] + 0.05:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _wait(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_player_plays_hls_with_subtitles_quality_menu_and_progress(
    site: tuple[Site, str], browser_page: BrowserPage
) -> None:
    server, base = site
    watch = render_watch_page(
        title='Lecture 1 <intro> & "welcome"',
        master_url=f"{VIDEO}hls/master.m3u8",
        poster_url=f"{VIDEO}hls/poster.jpg",
        progress_url=PROGRESS,
        csrf_token=CSRF,
        captions=True,
        language="en",
        progress_interval_s=2,
    )
    server.page, server.csp = watch.html, watch.csp
    server.fail_posts = 1  # the first report fails: its ranges must come with a later one
    page = browser_page.page
    browser_page.context.add_cookies([{"name": "lmsd_session", "value": "s3ss10n", "url": base}])
    page.goto(f"{base}/watch")
    assert page.locator("h1").inner_text() == 'Lecture 1 <intro> & "welcome"'

    # Plays through MSE: H.264 + AAC in fMP4 decode in this Chromium.
    page.wait_for_function("() => window.lmsdPlayers.length === 1 && window.lmsdPlayers[0].hls !== null")
    page.evaluate("() => document.querySelector('video').play()")
    page.wait_for_function("() => document.querySelector('video').currentTime > 2.2", timeout=15_000)
    playing = page.evaluate(
        """() => { const v = document.querySelector('video');
                   return {src: v.currentSrc, w: v.videoWidth, frames: v.getVideoPlaybackQuality().totalVideoFrames,
                           codecs: MediaSource.isTypeSupported('video/mp4; codecs="avc1.4d401e,mp4a.40.2"')}; }"""
    )
    assert playing["src"].startswith("blob:") and playing["w"] > 0 and playing["frames"] > 10, playing
    assert playing["codecs"]

    # Captions on by default in the page's language: the English cue is active, and shown.
    cue = page.evaluate(
        """() => { const v = document.querySelector('video');
                   for (const t of v.textTracks) { if (t.language === 'en' && t.mode === 'showing' &&
                       t.activeCues && t.activeCues.length) return t.activeCues[0].text; }
                   return null; }"""
    )
    if cue is None:  # between two timeupdates the track may lag: wait for it, still in the cue's time
        page.wait_for_function(
            """() => Array.from(document.querySelector('video').textTracks)
                 .some(t => t.language === 'en' && t.mode === 'showing' && t.activeCues && t.activeCues.length > 0)""",
            timeout=5_000,
        )
        cue = page.evaluate(
            "() => Array.from(document.querySelector('video').textTracks).find(t => t.activeCues && t.activeCues.length).activeCues[0].text"
        )
    assert cue == FIRST_CUE
    captions = page.get_by_role("button", name="Captions")
    assert captions.get_attribute("aria-pressed") == "true"
    browser_page.screenshot("player-playing")

    # The captions toggle hides the track and shows it again.
    captions.click()
    assert captions.get_attribute("aria-pressed") == "false"
    assert page.evaluate("() => window.lmsdPlayers[0].hls.subtitleDisplay") is False
    captions.press("Enter")
    assert captions.get_attribute("aria-pressed") == "true"
    page.wait_for_function(
        "() => Array.from(document.querySelector('video').textTracks).some(t => t.language === 'en' && t.mode === 'showing')"
    )

    # The quality menu: a labelled <select> with Auto and every level; choosing one switches to it.
    quality = page.get_by_label("Quality")
    labels = [o.strip() for o in quality.locator("option").all_inner_texts()]
    assert labels[0].startswith("Auto") and labels[1:] == ["360p", "240p"], labels
    quality.focus()
    quality.select_option(label="240p")
    page.wait_for_function(
        """() => { const h = window.lmsdPlayers[0].hls;
                   return !h.autoLevelEnabled && h.levels[h.currentLevel].height === 240; }"""
    )
    page.wait_for_function("() => document.querySelector('video').videoHeight === 240", timeout=10_000)
    quality.select_option(value="-1")
    assert page.evaluate("() => window.lmsdPlayers[0].hls.autoLevelEnabled") is True

    # Progress: the periodic report (the first one failed and is retried), then a seek, a pause.
    _wait(lambda: sum(p["ok"] for p in server.posts) >= 1, 10, "a successful progress POST")
    before = page.evaluate("() => document.querySelector('video').currentTime")
    assert before < 13.0, "the test is too slow for its 20 s video"
    page.evaluate("() => { const v = document.querySelector('video'); v.currentTime = 14.5; }")
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return !v.seeking && v.currentTime > 15.3; }"
    )
    count = len(server.posts)
    page.evaluate("() => document.querySelector('video').pause()")
    _wait(lambda: len(server.posts) > count and server.posts[-1]["ok"], 5, "the progress POST on pause")
    paused_at = page.evaluate("() => document.querySelector('video').currentTime")
    browser_page.screenshot("player-paused")

    assert not server.posts[0]["ok"]
    for post in server.posts:
        assert post["csrf"] == CSRF
        assert "lmsd_session=s3ss10n" in post["cookie"]
        assert post["type"].startswith("application/json")
        body = post["json"]
        assert set(body) == {"segments", "position_s", "duration_s"}
        assert body["duration_s"] == pytest.approx(20.0, abs=0.2)
        assert body["segments"] == _merge(body["segments"]), "a report's ranges are merged"
    last = server.posts[-1]["json"]
    assert last["position_s"] == pytest.approx(paused_at, abs=0.05)
    received = _merge([s for p in server.posts if p["ok"] for s in p["json"]["segments"]])
    failed = server.posts[0]["json"]["segments"]
    assert failed and all(_covered(received, s, e, 0.01) for s, e in failed), (failed, received)
    assert _covered(received, 0.0, 2.2), received  # from the start, nothing lost
    assert _covered(received, 14.5, 15.3), received  # after the seek
    skipped = (before + 0.6, 14.3)
    assert not any(s < skipped[1] and e > skipped[0] for s, e in received), f"skipped {skipped}: {received}"
    ok_segments = [s for p in server.posts[1:] if p["ok"] for s in p["json"]["segments"]]
    sent_twice = [
        (a, b)
        for i, a in enumerate(ok_segments)
        for b in ok_segments[i + 1 :]
        if min(a[1], b[1]) - max(a[0], b[0]) > 0.05
    ]
    assert not sent_twice, f"a range was reported twice: {sent_twice}"

    # Leaving the page while playing sends the last ranges (keepalive fetch on pagehide).
    page.evaluate("() => document.querySelector('video').play()")
    page.wait_for_function("(t) => document.querySelector('video').currentTime > t + 0.5", arg=paused_at)
    count = len(server.posts)
    page.goto("about:blank")
    _wait(lambda: len(server.posts) > count, 5, "the progress POST on pagehide")
    time.sleep(0.3)  # pagehide and visibilitychange may both report
    last_posts = server.posts[count:]
    assert all(p["csrf"] == CSRF for p in last_posts)
    final = _merge([s for p in last_posts for s in p["json"]["segments"]])
    assert _covered(final, paused_at, paused_at + 0.5), last_posts

    browser_page.log.assert_clean(allow=[r"status of 503"])


def test_transcoding_page_follows_progress_and_reloads_when_ready(
    site: tuple[Site, str], browser_page: BrowserPage
) -> None:
    server, base = site
    watch = render_watch_page(
        title="Lecture 2",
        master_url=f"{VIDEO}hls/master.m3u8",
        progress_url=PROGRESS,
        csrf_token=CSRF,
        transcoding=Transcoding(percent=12.0, status_url=STATUS),
    )
    server.page, server.csp = watch.html, watch.csp
    server.statuses = [{"state": "transcoding", "percent": 64.6}, {"state": "ready", "percent": 100}]
    page = browser_page.page
    page.goto(f"{base}/watch")
    bar = page.get_by_role("progressbar")
    assert bar.get_attribute("aria-valuenow") == "12"
    assert page.locator(".lmsd-transcoding-text").inner_text() == "Transcoding: 12%"
    page.wait_for_function("() => document.querySelector('progress').getAttribute('aria-valuenow') === '65'")
    assert page.locator(".lmsd-transcoding-text").inner_text() == "Transcoding: 65%"
    browser_page.screenshot("player-transcoding")
    _wait(lambda: server.page_loads >= 2, 8, "the reload once the video is ready")
    assert server.status_polls >= 2
    browser_page.log.assert_clean()


def test_harness_reports_csp_violations_and_errors(site: tuple[Site, str], browser_page: BrowserPage) -> None:
    server, base = site
    server.page = '<!doctype html><title>x</title><script>console.error("inline ran")</script><p>x</p>'
    server.csp = render_watch_page(title="x", master_url="/m", progress_url="/p", csrf_token="t").csp
    browser_page.page.goto(f"{base}/watch")
    browser_page.page.evaluate(
        "() => { console.error('boom'); setTimeout(() => { throw new Error('oops'); }); }"
    )
    browser_page.page.wait_for_timeout(200)
    log = browser_page.log
    assert any("script-src" in v for v in log.csp_violations), log
    assert any("boom" in m for m in log.console_errors) and any("oops" in m for m in log.page_errors), log
    assert not any("inline ran" in m for m in log.console_errors)
    with pytest.raises(AssertionError, match="CSP"):
        log.assert_clean(allow=["boom", "oops"])
