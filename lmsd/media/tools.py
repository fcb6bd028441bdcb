"""Where ffmpeg and ffprobe come from: the configured paths, else the system's, else (ffmpeg
only) the binary in the imageio-ffmpeg wheel."""

from __future__ import annotations

import shutil

from lmsd.errors import OperationFailed
from lmsd.settings import MediaSettings


def ffmpeg(media: MediaSettings) -> str:
    if media.ffmpeg:
        return media.ffmpeg
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffprobe(media: MediaSettings) -> str:
    if media.ffprobe:
        return media.ffprobe
    found = shutil.which("ffprobe")
    if not found:
        raise OperationFailed(
            "ffprobe is not installed: install ffmpeg (Debian: apt install ffmpeg) or set media.ffprobe"
        )
    return found
