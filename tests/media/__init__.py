"""Test videos made with real ffmpeg, and a small tus 1.0 client over httpx (the product's own
upload protocol, as a browser's tus-js-client speaks it)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def make_clip(
    path: Path, seconds: float = 2.0, size: str = "320x240", *, audio: bool = True, rate: int = 25,
    codec: tuple[str, ...] = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    extra: tuple[str, ...] = (),
) -> Path:
    """A test pattern (ffmpeg's testsrc2) with a tone, encoded as asked."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:a", "aac", "-b:a", "96k"]
    tmp = path.with_name(f".{os.getpid()}-{path.name}")  # parallel test workers may race here
    cmd += [*codec, *extra, "-shortest", "-movflags", "+faststart", "-f", "mp4", str(tmp), "-y"]
    subprocess.run(cmd, check=True, timeout=120)
    os.replace(tmp, path)
    return path


def _meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


TUS = {"tus-resumable": "1.0.0"}


async def create(
    c: httpx.AsyncClient, headers: dict[str, str], course_id: str, length: int, filename: str = "lecture.mp4",
    filetype: str = "video/mp4", **meta: str,
) -> httpx.Response:
    return await c.post(
        "/api/v1/uploads",
        headers={**headers, **TUS, "upload-length": str(length),
                 "upload-metadata": _meta(course_id=course_id, filename=filename, filetype=filetype, **meta)},
    )


async def patch(
    c: httpx.AsyncClient, headers: dict[str, str], location: str, offset: int, data: bytes, checksum: bool = True
) -> httpx.Response:
    extra = {"upload-checksum": "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()} if checksum else {}
    return await c.patch(
        location,
        headers={**headers, **TUS, "upload-offset": str(offset), "content-type": "application/offset+octet-stream", **extra},
        content=data,
    )


async def upload(
    c: httpx.AsyncClient, headers: dict[str, str], course_id: str, path: Path, *, chunk: int = 512 * 1024,
    filetype: str = "video/mp4", **meta: str,
) -> httpx.Response:
    """Upload ``path`` in chunks; returns the last PATCH's response (204 with Lmsd-Video-Id, or the
    problem that refused the file)."""
    data = path.read_bytes()
    r = await create(c, headers, course_id, len(data), path.name, filetype, **meta)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    offset = 0
    while True:
        r = await patch(c, headers, location, offset, data[offset:offset + chunk])
        if r.status_code != 204:
            return r
        offset = int(r.headers["upload-offset"])
        if offset >= len(data):
            return r


async def uploaded_video(c: httpx.AsyncClient, headers: dict[str, str], course_id: str, path: Path, **meta: str) -> str:
    r = await upload(c, headers, course_id, path, **meta)
    assert r.status_code == 204, r.text
    return r.headers["lmsd-video-id"]


async def wait_video(
    c: httpx.AsyncClient, headers: dict[str, str], video_id: str, until: Any, timeout: float = 120
) -> dict[str, Any]:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await c.get(f"/api/v1/videos/{video_id}", headers=headers)
        assert r.status_code == 200, r.text
        last = r.json()
        if until(last):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"video {video_id} did not reach the state in {timeout}s; last: {last}")
