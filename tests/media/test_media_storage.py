"""lmsd.media.storage and the tus receiving loop on real files: bytes are written off the event loop,
in order, under one writer's lock; a body that stops early keeps what arrived, one that goes past
the declared length keeps nothing of it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lmsd.errors import Conflict, NotFound
from lmsd.media import storage
from lmsd.media.errors import TooLarge
from lmsd.media.uploads import _receive


async def _body(*parts: bytes, then: BaseException | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if then is not None:
        raise then


async def test_sink_writes_every_byte_in_order_across_slices_and_digests_them(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    await storage.create_empty(path)
    parts = [os.urandom(n) for n in (1, storage.CHUNK - 1, 70_000, storage.CHUNK + 3, 5)]
    digest = hashlib.sha256()
    async with storage.locked_upload(path) as upload:
        sink = upload.sink()
        sink.digest = digest
        for part in parts:
            await sink.write(part)
        await sink.flush()
        assert await upload.size() == sum(map(len, parts))
    assert path.read_bytes() == b"".join(parts)
    assert digest.digest() == hashlib.sha256(b"".join(parts)).digest()


async def test_one_writer_at_a_time_and_missing_uploads(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    await storage.create_empty(path)
    with pytest.raises(FileExistsError):
        await storage.create_empty(path)  # never one that exists
    async with storage.locked_upload(path):
        with pytest.raises(Conflict, match="another request is writing"):
            async with storage.locked_upload(path):
                pass
        with pytest.raises(Conflict):
            await storage.remove_upload(path)
        assert path.exists()
    await storage.remove_upload(path)
    assert not path.exists() and await storage.size_of(path) is None
    await storage.remove_upload(path)  # gone already: nothing to do
    with pytest.raises(NotFound, match="no such upload"):
        async with storage.locked_upload(path):
            pass


async def test_a_body_that_stops_early_keeps_what_arrived(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    await storage.create_empty(path)
    async with storage.locked_upload(path) as upload:
        with pytest.raises(ConnectionResetError):
            await _receive(upload.sink(), _body(b"a" * 10, b"b" * 20, then=ConnectionResetError()), 0, 100)
    assert path.read_bytes() == b"a" * 10 + b"b" * 20


async def test_a_body_past_the_declared_length_leaves_the_upload_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(b"x" * 5)
    async with storage.locked_upload(path) as upload:
        big = b"y" * (storage.CHUNK + 1)  # the first part reaches the disk before the overflow is seen
        with pytest.raises(TooLarge, match="declared Upload-Length of"):
            await _receive(upload.sink(), _body(big, b"z" * 10), 5, 5 + len(big) + 9, on_too_large=lambda: upload.truncate(5))
    assert path.read_bytes() == b"x" * 5


async def test_staged_bytes_are_appended_when_kept_and_forgotten_when_dropped(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(b"head")
    async with storage.locked_upload(path) as upload:
        async with upload.staging(hashlib.md5()) as staged:
            await _receive(staged, _body(b"bad"), 4, 100)
        await upload.drop_staged()
        assert not upload.staged.exists()
        async with upload.staging(hashlib.md5()) as staged:
            await _receive(staged, _body(b"tail", b"!"), 4, 100)
        assert staged.digest.digest() == hashlib.md5(b"tail!").digest()
        await upload.keep_staged()
        assert not upload.staged.exists()
    assert path.read_bytes() == b"headtail!"


async def test_a_file_operation_that_blocks_does_not_stop_the_event_loop(tmp_path: Path) -> None:
    """Opening a FIFO for writing blocks until a reader opens it: the reader is opened by another
    task on the same loop, which can only run if the open happens in a worker thread."""
    fifo = tmp_path / "upload"
    os.mkfifo(fifo)
    readers: list[int] = []
    rescue = threading.Timer(5, lambda: readers.append(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)))
    rescue.start()  # should the open block the loop, the test fails instead of hanging

    async def open_reader() -> None:
        await asyncio.sleep(0.1)
        readers.append(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))

    try:
        started = asyncio.get_running_loop().time()
        reader = asyncio.create_task(open_reader())
        async with storage.locked_upload(fifo):
            waited = asyncio.get_running_loop().time() - started
        await reader
        assert waited < 4, f"the loop was blocked for {waited:.1f} s"
    finally:
        rescue.cancel()
        for fd in readers:
            os.close(fd)
