"""The watch page renderer: everything escaped, no inline script, the CSP the player needs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from lmsd.portal.player import Transcoding, render_watch_page, watch_page_csp

EVIL = '"><script>alert(1)</script>&'


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def _parse(doc: str) -> _Collect:
    parser = _Collect()
    parser.feed(doc)
    return parser


def test_player_page_escapes_everything_and_has_no_inline_script() -> None:
    page = render_watch_page(
        title=EVIL,
        master_url=f"/media/videos/1/hls/master.m3u8?sig={EVIL}",
        poster_url=f"/poster.jpg?{EVIL}",
        progress_url=f"/progress?{EVIL}",
        csrf_token=EVIL,
        captions=False,
        language=EVIL,
        thumbnails_vtt_url=f"/sprite.vtt?{EVIL}",
    )
    parsed = _parse(page.html)
    assert "<script>alert" not in page.html
    assert parsed.script_text == []
    scripts = [attrs["src"] for tag, attrs in parsed.tags if tag == "script"]
    assert [s.split("?")[0] if s else s for s in scripts] == [
        "/static/vendor/hls.min.js",
        "/static/min/player.js",  # minified by npm run build
    ]
    assert all(attrs.get("src") and "defer" in attrs for tag, attrs in parsed.tags if tag == "script")
    assert not any(k.startswith("on") or k == "style" for _, attrs in parsed.tags for k in attrs)
    video = next(attrs for tag, attrs in parsed.tags if tag == "video")
    assert video["class"] == "lmsd-player"
    assert video["data-src"] == f"/media/videos/1/hls/master.m3u8?sig={EVIL}"
    assert video["data-csrf"] == EVIL and video["data-lang"] == EVIL
    assert video["data-captions"] == "off" and video["data-progress-interval"] == "15"
    assert video["poster"] == f"/poster.jpg?{EVIL}"
    assert video["data-progress-url"] == f"/progress?{EVIL}"
    assert video["data-thumbnails"] == f"/sprite.vtt?{EVIL}"
    assert page.body in page.html


def test_transcoding_page_shows_an_accessible_progress_bar() -> None:
    page = render_watch_page(
        title="Lecture",
        master_url="/m.m3u8",
        progress_url="/p",
        csrf_token="t",
        transcoding=Transcoding(percent=41.6, status_url=f"/status?{EVIL}"),
    )
    parsed = _parse(page.body)
    assert not any(tag == "video" for tag, _ in parsed.tags)
    box = next(attrs for tag, attrs in parsed.tags if attrs.get("class") == "lmsd-transcoding")
    assert box["data-status-url"] == f"/status?{EVIL}" and box["data-poll-interval"] == "3"
    bar = next(attrs for tag, attrs in parsed.tags if tag == "progress")
    assert bar["value"] == bar["aria-valuenow"] == "42" and bar["max"] == "100"
    assert bar["aria-labelledby"] == "lmsd-transcoding-label"
    assert 'id="lmsd-transcoding-label"' in page.body
    scripts = [attrs["src"] for tag, attrs in parsed.tags if tag == "script"]
    assert len(scripts) == 1 and scripts[0] and scripts[0].startswith("/static/min/player.js?v=")


def test_csp_allows_what_hls_js_needs_and_no_inline_script() -> None:
    csp = dict(d.strip().split(" ", 1) for d in watch_page_csp(["https://cdn.example.org"]).split(";"))
    assert csp["script-src"] == "'self'" and "unsafe" not in " ".join(csp.values())
    assert csp["media-src"] == "'self' blob: data: https://cdn.example.org"
    assert csp["connect-src"] == "'self' https://cdn.example.org"
    assert csp["worker-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert re.fullmatch(r"[ -~]+", watch_page_csp())  # one header line
