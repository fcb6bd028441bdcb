"""Where media files live, and every blocking operation on them, run off the event loop.

``<data>/uploads/<upload id>`` holds a tus upload's bytes (its size is the upload's offset);
``<data>/videos/<id>/source`` the uploaded file once it is a video; ``<data>/media/videos/<id>/``
what players fetch (the transcoder's HLS, the subtitles), served by the gateway.

Opening, writing, renaming, removing and measuring these files happens in a worker thread
(``anyio.to_thread``): an upload's disk or a slow volume never stalls other requests. Closing a
file descriptor is the exception: it runs in place so that it happens even while the request is
being cancelled (a lock is never left held).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from lmsd.errors import Conflict, NotFound
from lmsd.media import subtitles
from lmsd.settings import Settings

CHUNK = 1024 * 1024  # bytes received are written in slices of up to this size: one thread hop per slice


# -- paths --------------------------------------------------------------------------------------------
def upload_file(settings: Settings, upload_id: uuid.UUID) -> Path:
    return settings.data_dir / "uploads" / str(upload_id)


def source_file(settings: Settings, video_id: uuid.UUID) -> Path:
    return settings.data_dir / "videos" / str(video_id) / "source"


def media_dir(settings: Settings, video_id: uuid.UUID) -> Path:
    return settings.data_dir / "media" / "videos" / str(video_id)


# -- whole files ----------------------------------------------------------------------------------------
def _free_space(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(folder).free


async def free_space(folder: Path) -> int:
    """Bytes free on the volume of ``folder`` (created if missing)."""
    return await anyio.to_thread.run_sync(_free_space, folder)


def _create_empty(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


async def create_empty(path: Path) -> None:
    """A new, empty upload file (never one that exists)."""
    await anyio.to_thread.run_sync(_create_empty, path)


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


async def size_of(path: Path) -> int | None:
    """The file's size in bytes, None when there is no such file."""
    return await anyio.to_thread.run_sync(_size_of, path)


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


async def remove(*paths: Path) -> None:
    """Remove the files that exist among ``paths``."""
    if paths:
        await anyio.to_thread.run_sync(_remove, paths)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


async def move(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` (same volume), creating the target's folder."""
    await anyio.to_thread.run_sync(_move, source, target)


def _write_subtitles(
    folder: Path, language: str, cues: list[subtitles.Cue], duration_s: float, segment_s: float
) -> None:
    subtitles.write_hls_subtitles(cues, folder / language, duration_s, segment_s)
    subtitles.write_webvtt(cues, folder / f"{language}.vtt")


async def write_subtitles(
    settings: Settings, video_id: uuid.UUID, language: str, cues: list[subtitles.Cue], duration_s: float
) -> None:
    """A language's subtitle files: the segmented HLS rendition and the whole-file WebVTT."""
    await anyio.to_thread.run_sync(
        _write_subtitles, media_dir(settings, video_id) / "subtitles", language, cues, duration_s,
        float(settings.media.segment_seconds),
    )


# -- an upload being written ------------------------------------------------------------------------------
def _open_locked(path: Path) -> int:
    """One writer per upload at a time (tus forbids concurrent PATCHes of one upload)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise NotFound("no such upload") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Conflict("another request is writing this upload; retry when it ends") from None
    return fd


def _write_all(fd: int, data: bytes, digest: Any) -> None:
    if digest is not None:
        digest.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Sink:
    """Bytes received, gathered and written in slices of up to ``CHUNK`` in a worker thread;
    ``digest`` (a hashlib object), when given, sees every byte written, in order."""

    def __init__(self, fd: int, digest: Any = None) -> None:
        self.fd = fd
        self.digest = digest
        self._pending: list[bytes] = []
        self._size = 0

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self.discard()
        await anyio.to_thread.run_sync(_write_all, self.fd, data, self.digest)

    def discard(self) -> None:
        self._pending.clear()
        self._size = 0


def _keep_staged(staged: Path, fd: int) -> None:
    with open(staged, "rb") as source, os.fdopen(os.dup(fd), "wb", closefd=True) as target:
        shutil.copyfileobj(source, target, CHUNK)
    staged.unlink(missing_ok=True)


class LockedUpload:
    """An upload's file opened for appending, locked against other writers."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.staged = path.with_name(f"{path.name}.chunk")

    async def size(self) -> int:
        return (await anyio.to_thread.run_sync(os.fstat, self.fd)).st_size

    async def truncate(self, size: int) -> None:
        await anyio.to_thread.run_sync(os.ftruncate, self.fd, size)

    def sink(self) -> Sink:
        """Bytes appended straight to the upload."""
        return Sink(self.fd)

    @contextlib.asynccontextmanager
    async def staging(self, digest: Any) -> AsyncIterator[Sink]:
        """Bytes written beside the upload (``<id>.chunk``, emptied first) until they are checked:
        then ``keep_staged`` appends them, ``drop_staged`` forgets them."""
        fd = await anyio.to_thread.run_sync(os.open, self.staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            yield Sink(fd, digest)
        finally:
            os.close(fd)

    async def keep_staged(self) -> None:
        await anyio.to_thread.run_sync(_keep_staged, self.staged, self.fd)

    async def drop_staged(self) -> None:
        await remove(self.staged)


@contextlib.asynccontextmanager
async def locked_upload(path: Path) -> AsyncIterator[LockedUpload]:
    """The upload's file, locked for this request (``Conflict`` while another writes it,
    ``NotFound`` when there is no such file)."""
    fd = await anyio.to_thread.run_sync(_open_locked, path)
    try:
        yield LockedUpload(path, fd)
    finally:
        os.close(fd)


def _remove_upload(path: Path) -> None:
    try:
        fd = _open_locked(path)
    except NotFound:
        return
    try:
        path.unlink()
    finally:
        os.close(fd)


async def remove_upload(path: Path) -> None:
    """Remove an upload's file unless a request is writing it (``Conflict`` then)."""
    await anyio.to_thread.run_sync(_remove_upload, path)
