"""Segmented WebVTT as hls.js sees it: cues land on the video's timeline at the times we wrote.

This checks the ``X-TIMESTAMP-MAP=MPEGTS:0`` choice (see ``lmsd/media/subtitles.py``) against the
hls.js the portal ships, in Debian's Chromium, with ffmpeg's fMP4 HLS output (H.264 with B-frames
and AAC, as the transcoder makes it). With the MPEG-TS habit ``MPEGTS:900000`` every cue would
appear 10 s late; a cue spanning a segment boundary is in both segments but shown once.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lmsd.media.cues import Cue
from lmsd.media.subtitles import write_hls_subtitles

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]  # the browser and browser_page fixtures

HLS_JS = Path(__file__).resolve().parents[2] / "lmsd" / "portal" / "static" / "vendor" / "hls.min.js"
CUES = [Cue(2.0, 3.5, "at two"), Cue(6.0, 7.5, "at six"), Cue(9.0, 11.0, "from nine, across a boundary")]
PAGE = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video id="v" muted playsinline></video>
<script src="hls.min.js"></script>
<script>
  const video = document.getElementById("v");
  const hls = new Hls({ enableWebVTT: true, renderTextTracksNatively: true });
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => { hls.subtitleTrack = 0; hls.subtitleDisplay = true; });
  hls.loadSource("master.m3u8");
  hls.attachMedia(video);
</script>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not HLS_JS.is_file():
        pytest.fail(f"hls.js is missing at {HLS_JS}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg is not installed; this test needs it (Debian: apt-get install ffmpeg)")
    root = tmp_path_factory.mktemp("site")
    (root / "v").mkdir()
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "12",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_fmp4_init_filename", "init.mp4", "-start_number", "1",
         "-hls_segment_filename", str(root / "v" / "seg_%05d.m4s"), str(root / "v" / "index.m3u8")],
        check=True, timeout=120,
    )  # fmt: skip
    write_hls_subtitles(CUES, root / "subtitles" / "en", duration_s=12.0, segment_s=2.0)
    (root / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,'
        'AUTOSELECT=YES,URI="subtitles/en/index.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64000d,mp4a.40.2",SUBTITLES="subs"\nv/index.m3u8\n'
    )
    (root / "index.html").write_text(PAGE)
    shutil.copy(HLS_JS, root / "hls.min.js")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


def test_hls_js_shows_segmented_cues_at_their_times(site: str, browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto(site + "index.html")
    cues_js = """() => Array.from(document.getElementById("v").textTracks)
        .flatMap(t => Array.from(t.cues || []).map(c => [t.mode, c.startTime, c.endTime, c.text]))"""
    page.wait_for_function(f"() => ({cues_js})().length >= {len(CUES)}", timeout=30_000)
    page.wait_for_timeout(500)  # every segment is loaded by now: a duplicate would show up
    shown = page.evaluate(cues_js)
    assert [(mode, text) for mode, _, _, text in shown] == [("showing", cue.text) for cue in CUES]
    for (_, start, end, _), cue in zip(shown, CUES, strict=True):
        assert start == pytest.approx(cue.start_s, abs=0.05) and end == pytest.approx(cue.end_s, abs=0.05)
    browser_page.log.assert_clean()
