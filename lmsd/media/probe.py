"""Is an upload a playable video? ffprobe (through ffmpeg-python) reads its streams, then ffmpeg
decodes a frame at the start and one near the end, which catches truncated files whose header
still looks whole. What is refused gets a reason a person can act on."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg  # ffmpeg-python

from lmsd.contracts.v1 import media_pb2
from lmsd.errors import Invalid

PROBE_TIMEOUT_S = 60
MAX_SIDE = 8192  # 8K; larger frames are not lecture recordings
IMAGE_CODECS = {"mjpeg", "png", "gif", "bmp", "tiff", "webp"}


class NotPlayable(Invalid):
    """The upload is not a video we can play; the message says why."""


def probe(ffprobe: str, ffmpeg_bin: str, path: Path) -> media_pb2.VideoProbe:
    try:
        info: dict[str, Any] = ffmpeg.probe(str(path), cmd=ffprobe, timeout=PROBE_TIMEOUT_S)
    except ffmpeg.Error as exc:
        raise NotPlayable(f"not a video file: {_last_line(exc.stderr)}") from None
    except subprocess.TimeoutExpired:
        raise NotPlayable("the file could not be read in time (is it a video?)") from None
    streams = info.get("streams", [])
    fmt = info.get("format", {})
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and s.get("codec_name") not in IMAGE_CODECS
        and not s.get("disposition", {}).get("attached_pic")
    ]
    if not videos:
        raise NotPlayable("the file has no video stream")
    video = videos[0]
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise NotPlayable("the video stream has no picture size")
    if max(width, height) > MAX_SIDE:
        raise NotPlayable(f"the picture is {width}x{height}; the largest accepted side is {MAX_SIDE}")
    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    if duration <= 0:
        raise NotPlayable("the video has no duration (an empty or broken file)")
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width
    _decodes(ffmpeg_bin, path, duration)
    return media_pb2.VideoProbe(
        width=width,
        height=height,
        rotation=rotation,
        duration_ms=int(duration * 1000),
        video_codec=str(video.get("codec_name", "")),
        audio_codec=str(audio.get("codec_name", "")) if audio else "",
        pix_fmt=str(video.get("pix_fmt", "")),
        bit_rate=int(_float(fmt.get("bit_rate"))),
        frame_rate=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
        has_audio=audio is not None,
        container=str(fmt.get("format_name", "")),
        video_bit_rate=int(_float(video.get("bit_rate"))),
    )


def _decodes(ffmpeg_bin: str, path: Path, duration: float) -> None:
    """A frame decodes at the start and one near the end (the last fifth, at most two seconds)."""
    for start in (0.0, max(0.0, duration - min(2.0, duration * 0.2))):
        cmd = [
            ffmpeg_bin, "-nostdin", "-v", "error", "-ss", f"{start:.3f}", "-i", str(path),
            "-map", "0:v:0", "-frames:v", "1", "-f", "framecrc", "-",
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise NotPlayable("the video could not be decoded in time") from None
        out = done.stdout.decode(errors="replace").splitlines()
        if done.returncode != 0 or not [line for line in out if line and not line.startswith("#")]:
            where = "start" if start == 0 else "end"
            reason = _last_line(done.stderr) or "no frame could be decoded"
            raise NotPlayable(f"the video is damaged or truncated near its {where}: {reason}")


def _rotation(stream: dict[str, Any]) -> int:
    raw: object = stream.get("tags", {}).get("rotate")
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            raw = -int(side["rotation"])  # display matrix: counter-clockwise degrees
    try:
        return int(float(str(raw))) % 360 if raw is not None else 0
    except ValueError:
        return 0


def _float(value: object) -> float:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return 0.0


def _rate(value: object) -> float:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return 0.0
    return round(float(rate), 3)


def _last_line(stderr: bytes | None) -> str:
    lines = [line.strip() for line in (stderr or b"").decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
