"""The video player's markup: a pure function from what a page knows to HTML and the CSP it needs.

The routes that show it are :mod:`lmsd.portal.watch` (``/watch/<lesson>``) and the video
lessons of :mod:`lmsd.portal.learner.lessons`.

No inline script: ``static/player.js`` finds the ``<video class="lmsd-player">`` (or the
transcoding box) by class and reads everything from ``data-`` attributes. The progress endpoint
receives ``POST {"segments": [[start_s, end_s], ...], "position_s": x, "duration_s": d}`` (only
ranges not sent before) with the ``X-CSRF-Token`` header, except for a last report sent as a
beacon, which cannot carry headers and has the token in the body as ``csrf_token``. The status
endpoint answers ``{"state": "queued"|"transcoding"|"ready"|"failed", "percent": 0-100,
"detail": "..."}``; the page reloads itself once the state is ``ready``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from lmsd.portal.i18n import N_
from lmsd.portal.i18n import gettext as _
from lmsd.portal.static_files import asset_url

# The strings player.js shows itself; the page gives their translations in ``data-i18n``.
PLAYER_STRINGS = (
    N_("Quality"),
    N_("Captions"),
    N_("Auto"),
    N_("Auto (%s)"),
    N_("This video has no source."),
    N_("This browser cannot play this video."),
    N_("The video could not be played. Reload the page to try again."),
    N_("The video could not be transcoded."),
    N_("Transcoding: %s"),
)


def _messages() -> str:
    """The player's strings in the language being rendered, for ``data-i18n``."""
    return json.dumps({m: _(m) for m in PLAYER_STRINGS if _(m) != m}, ensure_ascii=False)


@dataclass(frozen=True)
class Transcoding:
    """The video is not playable yet: show ``percent`` and poll ``status_url`` every 3 s."""

    percent: float
    status_url: str


@dataclass(frozen=True)
class WatchPage:
    body: str  # the page's content with its stylesheet and script tags, for a portal layout
    html: str  # a whole document around ``body``
    csp: str  # the Content-Security-Policy header value the page needs


def watch_page_csp(media_origins: Sequence[str] = ()) -> str:
    """The policy for a page with the player.

    hls.js fetches playlists, segments and WebVTT with XHR/fetch (``connect-src``) and plays them
    through Media Source Extensions, whose ``blob:`` object URL is the video's source
    (``media-src blob:``); it renders subtitles into ``<track src="data:,WEBVTT">`` elements it
    adds (``media-src data:``; media data cannot run script). The browser's own HLS (Safari)
    loads the media URLs itself (``media-src`` the media origins). Its transmuxer worker is a same-origin file, so
    ``worker-src 'self'`` is enough. Posters and thumbnail sprites are images from the media
    origins. ``media_origins`` are extra origins (a CDN) such as ``https://cdn.example.org``;
    media served by the gateway under ``/media/`` is ``'self'``.
    """
    extra = "".join(f" {origin}" for origin in media_origins)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self'{extra}; media-src 'self' blob: data:{extra}; connect-src 'self'{extra}; "
        "worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


def _attrs(**values: str | None) -> str:
    """`` name="value"`` pairs, escaped; None leaves one out; ``data_src`` is data-src, ``class_`` class."""
    return "".join(
        f' {name.rstrip("_").replace("_", "-")}="{html.escape(value, quote=True)}"'
        for name, value in values.items()
        if value is not None
    )


def _player(
    master_url: str,
    poster_url: str | None,
    captions: bool,
    language: str,
    progress_url: str,
    csrf_token: str,
    thumbnails_vtt_url: str | None,
    progress_interval_s: int,
) -> str:
    # data-thumbnails is for the scrubbing preview of the full portal; player.js ignores it yet.
    video = _attrs(
        class_="lmsd-player",
        controls="",
        playsinline="",
        preload="metadata",
        poster=poster_url,
        data_src=master_url,
        data_captions="on" if captions else "off",
        data_lang=language,
        data_progress_url=progress_url,
        data_csrf=csrf_token,
        data_progress_interval=str(progress_interval_s),
        data_thumbnails=thumbnails_vtt_url,
        data_i18n=_messages(),
    )
    fallback = html.escape(_("Playing this video needs JavaScript and a browser that supports HLS video."))
    return f"<video{video}><p>{fallback}</p></video>"


def _transcoding(state: Transcoding) -> str:
    pct = max(0, min(100, round(state.percent)))
    progress = _attrs(
        id="lmsd-transcoding-bar",
        max="100",
        value=str(pct),
        aria_labelledby="lmsd-transcoding-label",
        aria_valuemin="0",
        aria_valuemax="100",
        aria_valuenow=str(pct),
        aria_valuetext=f"{pct}%",
    )
    box = _attrs(class_="lmsd-transcoding", data_status_url=state.status_url, data_poll_interval="3", data_i18n=_messages())
    label = html.escape(_("This video is being prepared. It will start here when it is ready."))
    text = html.escape(_("Transcoding: %s") % f"{pct}%")
    return (
        f"<div{box}>"
        f'<p id="lmsd-transcoding-label">{label}</p>'
        f"<progress{progress}>{pct}%</progress>"
        f'<p class="lmsd-transcoding-text">{text}</p>'
        '<p class="lmsd-transcoding-alert" role="alert"></p></div>'
    )


def render_watch_page(
    *,
    title: str,
    master_url: str,
    progress_url: str,
    csrf_token: str,
    poster_url: str | None = None,
    captions: bool = True,
    language: str = "en",
    thumbnails_vtt_url: str | None = None,
    transcoding: Transcoding | None = None,
    media_origins: Sequence[str] = (),
    progress_interval_s: int = 15,
) -> WatchPage:
    """The watch page of one video; with ``transcoding`` set, its progress instead of the player.

    While the video plays, watched ranges go to ``progress_url`` every ``progress_interval_s``
    seconds, and on pause, end and leaving the page.
    """
    scripts: list[str] = []
    if transcoding is None:
        scripts.append(asset_url("vendor/hls.min.js"))
        content = _player(
            master_url,
            poster_url,
            captions,
            language,
            progress_url,
            csrf_token,
            thumbnails_vtt_url,
            progress_interval_s,
        )
    else:
        content = _transcoding(transcoding)
    scripts.append(asset_url("player.js"))
    tags = "".join(f"<script{_attrs(src=src, defer='')}></script>" for src in scripts)
    body = (
        f"<link{_attrs(rel='stylesheet', href=asset_url('player.css'))}>"
        '<article class="lmsd-watch">'
        f"<h1>{html.escape(title)}</h1>{content}</article>{tags}"
    )
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>"
    )
    return WatchPage(body=body, html=document, csp=watch_page_csp(media_origins))
