"""WebVTT: write it, read instructors' edited files strictly, and segment it for HLS.

Cue text is kept as WebVTT cue text. Only the markup WebVTT defines for cue text survives
(``<b> <i> <u> <c.class> <v Speaker> <lang tag> <ruby> <rt>``); every other tag is dropped, and
stray ``&``, ``<`` and ``>`` are escaped, so a player or a page that shows the text cannot be made
to run anything. Cue settings, identifiers, NOTE, STYLE and REGION blocks are not kept.
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from lmsd.errors import Invalid
from lmsd.media.cues import Cue

MAX_WEBVTT_BYTES = 4 * 1024 * 1024  # ~30 hours of dense subtitles
MAX_CUE_SECONDS = 60.0
MAX_CUE_CHARS = 1000
ALLOWED_TAGS = frozenset({"b", "i", "u", "c", "v", "lang", "ruby", "rt"})

# A tag starts at "<" followed by a letter, "/" or a timestamp ("<00:01.000>") and ends at ">" or
# at the end of the line; any other "<" is text ("a < b", "I <3 it").
_TAG = re.compile(r"<(?=[A-Za-z/]|\d+:\d)([^<>\n]*)>?")
_START_TAG = re.compile(r"^([A-Za-z]+)((?:\.[A-Za-z0-9_-]+)*)(?:[ \t]+(.*))?$")
_ANNOTATION_JUNK = re.compile(r"[^\w .,'-]+")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_TIMING = re.compile(r"^(\S+)[ \t]+-->[ \t]+(\S+)(?:[ \t]+.*)?$")
_TIMESTAMP = re.compile(r"^(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})$")

# The X-TIMESTAMP-MAP of every segment. RFC 8216 section 3.5 maps cue time LOCAL to the media
# timestamp MPEGTS (90 kHz); for fMP4 renditions MPEGTS is read on the fMP4 media timeline. Our
# ladder is ffmpeg's fMP4 (CMAF) output, whose timeline starts at 0 (no -copyts, no MPEG-TS
# 1.4 s/10 s offset), so cue time t is media time t: MPEGTS:0 with LOCAL 0. hls.js computes the
# cue offset as (MPEGTS - initPTS) / 90000 and uses MPEGTS 0 when the header is absent, so for it
# the explicit header and no header behave the same; we still write it because Safari's native
# player, video.js and Shaka treat a segment without it differently (Shaka PR 9313, VHS issue 1216),
# and the familiar MPEGTS:900000 is an MPEG-TS convention that would show fMP4 subtitles 10 s late
# (Jellyfin issue 16647). tests/media/test_subtitles_hls.py checks it with the hls.js we ship.
TIMESTAMP_MAP = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"

__all__ = [
    "Cue",
    "InvalidSubtitles",
    "format_timestamp",
    "parse_webvtt",
    "plain_text",
    "sanitise_cue_text",
    "text_of",
    "to_webvtt",
    "write_hls_subtitles",
    "write_webvtt",
]


class InvalidSubtitles(Invalid):
    """A WebVTT file was rejected; the message names the line (422 "Invalid subtitles", lmsd.app.errors)."""


def _fail(line: int, message: str) -> InvalidSubtitles:
    return InvalidSubtitles(f"line {line}: {message}")


def format_timestamp(seconds: float) -> str:
    """``hh:mm:ss.ttt``, rounded to the millisecond."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _parse_timestamp(text: str, line: int) -> float:
    match = _TIMESTAMP.match(text)
    if match is None:
        raise _fail(line, f"bad timestamp {text[:40]!r}: write hh:mm:ss.ttt or mm:ss.ttt, like 00:01:02.500")
    hours, minutes, secs, millis = (int(part or 0) for part in match.groups())
    return (hours * 3600 + minutes * 60 + secs) * 1.0 + millis / 1000


def _clean_text(text: str) -> str:
    text = _CONTROL.sub("", text.replace("\t", " "))
    return html.escape(html.unescape(text), quote=False)


def sanitise_cue_text(text: str) -> str:
    """Cue text with only WebVTT's own markup, balanced, entities normalised, no empty lines."""
    out: list[str] = []
    open_tags: list[str] = []
    position = 0
    for match in _TAG.finditer(text):
        out.append(_clean_text(text[position : match.start()]))
        position = match.end()
        inner = match.group(1).strip()
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if name in open_tags:  # close it and anything opened inside it; drop stray end tags
                while open_tags:
                    closed = open_tags.pop()
                    out.append(f"</{closed}>")
                    if closed == name:
                        break
            continue
        start = _START_TAG.match(inner)
        if start is None or start.group(1).lower() not in ALLOWED_TAGS:
            continue  # unknown tags and timestamp tags go; their text stays, as text
        name, classes, annotation = start.group(1).lower(), start.group(2), (start.group(3) or "").strip()
        tag = name + classes
        if name == "v" and annotation:
            tag += " " + " ".join(_ANNOTATION_JUNK.sub(" ", annotation).split())
        elif name == "lang" and _LANGUAGE_TAG.match(annotation):
            tag += " " + annotation
        out.append(f"<{tag.strip()}>")
        open_tags.append(name)
    out.append(_clean_text(text[position:]))
    out.extend(f"</{name}>" for name in reversed(open_tags))
    lines = (line.strip() for line in "".join(out).split("\n"))
    return "\n".join(line for line in lines if line)


def plain_text(cue_text: str) -> str:
    """The words of cue text: markup removed, entities decoded, whitespace collapsed."""
    without_tags = _TAG.sub("", sanitise_cue_text(cue_text))
    return " ".join(html.unescape(without_tags).split())


def text_of(cues: Iterable[Cue]) -> str:
    """The plain transcript (for search): every cue's words, separated by single spaces."""
    return " ".join(words for cue in cues if (words := plain_text(cue.text)))


def _render(cues: Iterable[Cue], header: Sequence[str] = ()) -> str:
    parts = ["WEBVTT", *header, ""]
    for cue in cues:
        text = sanitise_cue_text(cue.text)
        if not text:
            continue
        parts += [f"{format_timestamp(cue.start_s)} --> {format_timestamp(cue.end_s)}", text, ""]
    return "\n".join(parts) + "\n"


def to_webvtt(cues: Iterable[Cue]) -> str:
    """A WebVTT file with ``cues`` (their text sanitised; cues left with no text are skipped)."""
    return _render(cues)


def parse_webvtt(source: str | bytes, max_bytes: int = MAX_WEBVTT_BYTES) -> list[Cue]:
    """Cues of an edited WebVTT file, validated strictly; raises :class:`InvalidSubtitles`.

    Rejected: a file over ``max_bytes`` or not UTF-8, a missing ``WEBVTT`` header, a bad timestamp
    or timing line, a cue that ends at or before its start, lasts over ``MAX_CUE_SECONDS`` or has
    over ``MAX_CUE_CHARS`` characters, has no text, or starts before the previous cue ended
    (out of order or overlapping). Markup is sanitised as in :func:`sanitise_cue_text`.
    """
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidSubtitles(f"the subtitle file is {size} bytes; the limit is {max_bytes} bytes")
    if isinstance(source, bytes):
        raw = source
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(raw[: exc.start].count(b"\n") + 1, "the file is not UTF-8 text") from exc
    lines = source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not _HEADER.match(lines[0]):
        raise _fail(1, 'missing WEBVTT header: the file must start with the line "WEBVTT"')
    index = 1
    while index < len(lines) and lines[index].strip():
        if "-->" in lines[index]:
            raise _fail(index + 1, "a blank line must separate the WEBVTT header from the first cue")
        index += 1

    cues: list[Cue] = []
    previous_line = 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        block_start = index
        while index < len(lines) and lines[index].strip():
            index += 1
        block = lines[block_start:index]
        first = block[0].strip()
        if first == "NOTE" or first.startswith(("NOTE ", "NOTE\t")) or first in ("STYLE", "REGION"):
            continue
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise _fail(block_start + 1, "expected a cue timing line like 00:00:01.000 --> 00:00:04.000")
        line_no = block_start + timing_at + 1
        timing = _TIMING.match(block[timing_at].strip())
        if timing is None:
            raise _fail(
                line_no, "bad cue timing line: write start --> end, like 00:00:01.000 --> 00:00:04.000"
            )
        start = _parse_timestamp(timing.group(1), line_no)
        end = _parse_timestamp(timing.group(2), line_no)
        for offset, payload_line in enumerate(block[timing_at + 1 :], start=line_no + 1):
            if "-->" in payload_line:
                raise _fail(
                    offset, "cue text cannot contain '-->' (is a blank line missing before this cue?)"
                )
        text = sanitise_cue_text("\n".join(block[timing_at + 1 :]))
        stamp = f"{format_timestamp(start)} --> {format_timestamp(end)}"
        if end <= start:
            raise _fail(line_no, f"the cue ends at or before it starts ({stamp})")
        if end - start > MAX_CUE_SECONDS:
            raise _fail(line_no, f"the cue lasts {end - start:.3f} s; the limit is {MAX_CUE_SECONDS:g} s")
        words = plain_text(text)
        if not words:
            raise _fail(line_no, "the cue has no text")
        if len(words) > MAX_CUE_CHARS:
            raise _fail(line_no, f"the cue has {len(words)} characters; the limit is {MAX_CUE_CHARS}")
        if cues and start < cues[-1].start_s:
            raise _fail(
                line_no,
                f"cues are out of order: this one starts at {format_timestamp(start)}, before the cue "
                f"on line {previous_line} ({format_timestamp(cues[-1].start_s)})",
            )
        if cues and start < cues[-1].end_s:
            raise _fail(
                line_no,
                f"the cue overlaps the cue on line {previous_line}, which ends at "
                f"{format_timestamp(cues[-1].end_s)}",
            )
        cues.append(Cue(start, end, text))
        previous_line = line_no
    return cues


def _write_atomically(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_webvtt(cues: Iterable[Cue], path: Path) -> None:
    """Write the whole-file WebVTT (``subtitles/<lang>.vtt``) atomically: write a temp file, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, to_webvtt(cues))


def write_hls_subtitles(cues: Sequence[Cue], out_dir: Path, duration_s: float, segment_s: float) -> None:
    """A segmented WebVTT rendition in ``out_dir``: ``index.m3u8`` and ``seg_00001.vtt``...

    The video's ``duration_s`` is cut into segments of ``segment_s`` (the last one shorter); each
    segment file holds every cue that overlaps it, so a cue spanning a boundary is in each
    segment it touches (players drop the duplicates), with its absolute times. Cues are clipped
    to the video's end. The folder is built beside ``out_dir`` and renamed into place, so a player
    sees the old rendition or the new one, never a mix or half a playlist.
    """
    if not (duration_s > 0 and segment_s > 0 and math.isfinite(duration_s) and math.isfinite(segment_s)):
        raise ValueError("duration_s and segment_s must be positive")
    count = max(1, math.ceil(duration_s / segment_s - 1e-9))
    clipped = [
        Cue(cue.start_s, min(cue.end_s, duration_s), cue.text) for cue in cues if cue.start_s < duration_s
    ]
    playlist = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "",  # target duration, filled in below
        "#EXT-X-MEDIA-SEQUENCE:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    segments: list[tuple[str, str]] = []
    longest = 0.0
    for number in range(1, count + 1):
        seg_start = (number - 1) * segment_s
        seg_end = min(number * segment_s, duration_s)
        inside = [cue for cue in clipped if cue.start_s < seg_end and cue.end_s > seg_start]
        name = f"seg_{number:05d}.vtt"
        segments.append((name, _render(inside, header=(TIMESTAMP_MAP,))))
        playlist += [f"#EXTINF:{seg_end - seg_start:.3f},", name]
        longest = max(longest, seg_end - seg_start)
    playlist[2] = f"#EXT-X-TARGETDURATION:{max(1, math.ceil(round(longest, 3)))}"
    playlist.append("#EXT-X-ENDLIST")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700; the gateway serves it
        for name, content in segments:
            (staging / name).write_text(content, encoding="utf-8")
        (staging / "index.m3u8").write_text("\n".join(playlist) + "\n", encoding="utf-8")
        _swap_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``, replacing an existing folder.

    A folder cannot be renamed over a non-empty one, so the old one is renamed away first: for the
    instant between the two renames the playlist is missing (a player retries a 404), but it is
    never half written.
    """
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    retired = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.old")
    out_dir.rename(retired)
    try:
        staging.rename(out_dir)
    except OSError:
        retired.rename(out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)
