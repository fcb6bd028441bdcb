"""The HLS master playlist a player receives, and the content-steering manifest.

The transcoder writes the media playlists and segments (and a plain master.m3u8 for tools). The
master a player gets is composed here, per request, because it depends on things that change
after transcoding: the delivery pathways (origin and CDNs), their signed query strings, the
subtitle tracks that exist now, and whether content steering is on (docs/video.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

LANGUAGE_NAMES = {
    "en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "it": "Italiano",
    "nl": "Nederlands", "pt": "Português", "pl": "Polski", "sv": "Svenska", "fi": "Suomi",
    "da": "Dansk", "nb": "Norsk bokmål", "cs": "Čeština", "el": "Ελληνικά", "tr": "Türkçe",
    "ru": "Русский", "uk": "Українська", "ar": "العربية", "he": "עברית", "hi": "हिन्दी",
    "zh": "中文", "ja": "日本語", "ko": "한국어",
}


def language_name(tag: str) -> str:
    return LANGUAGE_NAMES.get(tag.split("-")[0].lower(), tag)


@dataclass(frozen=True)
class Route:
    """Where one pathway serves this video's folder: ``base`` is the URL of ``/media/videos/<id>/``
    on it (absolute for a CDN, a path for the origin) and ``query`` its signed query string."""

    pathway: str
    base: str
    query: str

    def url(self, relative: str) -> str:
        return f"{self.base}{relative}?{self.query}" if self.query else f"{self.base}{relative}"


def _quoted(value: str) -> str:
    if any(c in value for c in '"\r\n'):
        raise ValueError(f"not allowed in a playlist attribute: {value!r}")
    return f'"{value}"'


def master_playlist(
    renditions: Sequence[dict[str, Any]],
    audio: dict[str, Any] | None,
    subtitles: Sequence[str],
    routes: Sequence[Route],
    *,
    frame_rate: float = 0.0,
    steering_uri: str | None = None,
) -> str:
    """Every variant once per route, smallest first; with several routes each line carries its
    PATHWAY-ID and the rendition groups are per pathway, as HLS content steering requires."""
    steered = steering_uri is not None and len(routes) > 1
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if steered:
        assert steering_uri is not None
        lines.append(
            f"#EXT-X-CONTENT-STEERING:SERVER-URI={_quoted(steering_uri)},PATHWAY-ID={_quoted(routes[0].pathway)}"
        )
    for route in routes:
        suffix = f"-{route.pathway}" if steered else ""
        if audio:
            lines.append(
                f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud{suffix}",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,'
                f'CHANNELS="2",URI={_quoted(route.url("hls/" + audio["playlist"]))}'
            )
        for n, language in enumerate(subtitles):
            default = "YES" if n == 0 else "NO"
            lines.append(
                f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs{suffix}",NAME={_quoted(language_name(language))},'
                f"LANGUAGE={_quoted(language)},DEFAULT={default},AUTOSELECT=YES,FORCED=NO,"
                f"URI={_quoted(route.url(f'subtitles/{language}/index.m3u8'))}"
            )
        for rendition in sorted(renditions, key=lambda r: int(r["bandwidth"])):
            codecs = str(rendition["codecs"])
            if audio and audio.get("codecs") and "mp4a" not in codecs:
                codecs = f"{codecs},{audio['codecs']}"
            attrs = [f"BANDWIDTH={int(rendition['bandwidth'])}"]
            if rendition.get("average_bandwidth"):
                attrs.append(f"AVERAGE-BANDWIDTH={int(rendition['average_bandwidth'])}")
            attrs.append(f"RESOLUTION={int(rendition['width'])}x{int(rendition['height'])}")
            attrs.append(f"CODECS={_quoted(codecs)}")
            if frame_rate > 0:
                attrs.append(f"FRAME-RATE={frame_rate:.3f}")
            if audio:
                attrs.append(f'AUDIO="aud{suffix}"')
            if subtitles:
                attrs.append(f'SUBTITLES="subs{suffix}"')
            if steered:
                attrs.append(f"PATHWAY-ID={_quoted(route.pathway)}")
            lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
            lines.append(route.url("hls/" + str(rendition["playlist"])))
    return "\n".join(lines) + "\n"


def steering_manifest(priority: Sequence[str], ttl_s: int, reload_uri: str) -> dict[str, Any]:
    """HLS content steering manifest (draft-pantos-hls-rfc8216bis, 7.2)."""
    return {"VERSION": 1, "TTL": ttl_s, "RELOAD-URI": reload_uri, "PATHWAY-PRIORITY": list(priority)}


def pathway_priority(
    pathways: Iterable[tuple[str, Sequence[str]]], region: str | None, unhealthy: set[str]
) -> list[str]:
    """Pathways serving the client's region first (in configured order), then the others; a
    pathway failing its health probe goes to the end whatever its region."""
    ordered = list(pathways)
    local = [p for p, regions in ordered if region and region in regions]
    rest = [p for p, _ in ordered if p not in local]
    preferred = local + rest
    return [p for p in preferred if p not in unhealthy] + [p for p in preferred if p in unhealthy]


def region_of(client_ip: str, networks: dict[str, list[str]]) -> str | None:
    """The region whose networks contain ``client_ip`` (most specific match wins)."""
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return None
    best: tuple[int, str] | None = None
    for region, cidrs in networks.items():
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            if address.version == net.version and address in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, region)
    return best[1] if best else None
