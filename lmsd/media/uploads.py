"""Resumable uploads (tus 1.0: core, creation, termination, checksum, expiration).

A tus upload's bytes live in ``<data>/uploads/<upload id>`` (the file's size is the upload's
offset: nothing received is ever lost); its row holds what was declared at creation. When the
last byte arrives the file is probed; a playable video moves to ``<data>/videos/<id>/source``,
gets its row and a ``video_uploaded`` event in the same transaction (the transcoder's job); any
other file is removed with the reason. The video keeps the upload's id. The files themselves are
``storage``'s: every operation on them runs off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from google.protobuf.json_format import MessageToDict
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.contracts.v1 import media_pb2
from lmsd.courses.service import load_course
from lmsd.db.models import Course, uploads, videos
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from lmsd.media import storage, tools
from lmsd.media.errors import BadRequest, ChecksumMismatch, Gone, TooLarge, UnsupportedType
from lmsd.media.probe import NotPlayable, probe
from lmsd.media.videos import valid_language
from lmsd.policy import Identity
from lmsd.settings import Settings

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass(frozen=True)
class UploadState:
    id: uuid.UUID
    offset: int
    length: int
    expires_at: datetime


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value may be absent)."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, value = item.partition(" ")
        if not key or " " in value.strip() or key in found:
            raise BadRequest(f"Upload-Metadata has a malformed or repeated pair: {item[:60]!r}")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode() if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
    return found


def _uuid(value: str | None, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Invalid(f"{name} must be a UUID") from None


async def create_upload(
    session: AsyncSession, actor: Identity, settings: Settings, length_header: str | None, metadata_header: str
) -> UploadState:
    media = settings.media
    if length_header is None:
        raise BadRequest("Upload-Length is required (deferred lengths are not supported)")
    try:
        length = int(length_header)
    except ValueError:
        raise BadRequest("Upload-Length must be a whole number of bytes") from None
    if length < 0:
        raise BadRequest("Upload-Length must not be negative")
    if length == 0:
        raise Invalid("the file is empty: a video upload needs its bytes")
    if length > media.max_upload_mb * 1024 * 1024:
        raise TooLarge(f"the file is {length} bytes; the largest video accepted is {media.max_upload_mb} MB")
    meta = parse_metadata(metadata_header)
    course_id = _uuid(meta.get("course_id"), "metadata course_id")
    filename = os.path.basename(meta.get("filename", "").replace("\\", "/")).strip()
    if not filename or len(filename) > 255 or any(ord(c) < 32 for c in filename):
        raise Invalid("metadata filename is required (the name of the file, at most 255 characters)")
    filetype = meta.get("filetype", "").strip().lower()
    if filetype not in media.allowed_types:
        raise UnsupportedType(
            f"files of type {filetype or '(none given)'!r} are not accepted; allowed: {', '.join(media.allowed_types)}"
        )
    title = (meta.get("title") or os.path.splitext(filename)[0]).strip()[:300] or filename
    language = meta.get("language") or None
    if language is not None and not valid_language(language):
        raise Invalid(f"metadata language {language!r} is not a language tag such as 'en' or 'pt-BR'")
    _, found = await load_course(session, actor, course_id)
    policy.require(actor, "video.upload", found)
    await _sweep_expired(session, settings)
    upload_id = uuid.uuid4()
    expires_at = datetime.now(UTC) + timedelta(hours=media.upload_expiry_h)
    path = storage.upload_file(settings, upload_id)
    free = await storage.free_space(path.parent)
    if free < length + settings.runtime.min_free_disk_mb * 1024 * 1024:
        raise TooLarge(f"not enough disk space for a {length}-byte upload ({free} bytes free)")
    await session.execute(
        insert(uploads).values(
            campus_id=actor.campus_id, id=upload_id, course_id=course_id, owner_id=actor.user_id, length=length,
            filename=filename, filetype=filetype, title=title, language=language, expires_at=expires_at,
        )
    )
    await storage.create_empty(path)
    return UploadState(upload_id, 0, length, expires_at)


async def _load_upload(session: AsyncSession, actor: Identity, upload_id: uuid.UUID) -> Any:
    row = (
        await session.execute(select(uploads).where(uploads.c.campus_id == actor.campus_id, uploads.c.id == upload_id))
    ).one_or_none()
    if row is None or (row.owner_id != actor.user_id and actor.role != "admin"):
        raise NotFound("no such upload")
    if row.expires_at < datetime.now(UTC):
        raise Gone("the upload expired; start it again")
    return row


async def upload_state(session: AsyncSession, actor: Identity, settings: Settings, upload_id: uuid.UUID) -> UploadState:
    row = await _load_upload(session, actor, upload_id)
    size = await storage.size_of(storage.upload_file(settings, upload_id))
    if size is None:
        raise NotFound("no such upload")
    return UploadState(upload_id, size, int(row.length), row.expires_at)


async def append(
    session: AsyncSession,
    actor: Identity,
    settings: Settings,
    upload_id: uuid.UUID,
    offset_header: str | None,
    checksum_header: str | None,
    chunks: AsyncIterator[bytes],
) -> tuple[UploadState, uuid.UUID | None]:
    """Append a PATCH's body at ``Upload-Offset``. Returns the new state and, when this chunk
    completed the upload, the id of the video it became."""
    row = await _load_upload(session, actor, upload_id)
    path = storage.upload_file(settings, upload_id)
    if await storage.size_of(path) is None:
        raise NotFound("no such upload")
    try:
        offset = int(offset_header or "")
    except ValueError:
        raise BadRequest("Upload-Offset is required and must be a whole number") from None
    digest, expected = _checksum(checksum_header)
    length = int(row.length)
    async with storage.locked_upload(path) as upload:
        current = await upload.size()
        if offset != current:
            raise Conflict(f"Upload-Offset {offset} does not match the upload's offset {current}")
        if digest is None:
            await _receive(upload.sink(), chunks, current, length, on_too_large=lambda: upload.truncate(current))
        else:
            async with upload.staging(digest) as staged:
                await _receive(staged, chunks, current, length)
            if digest.digest() != expected:
                await upload.drop_staged()
                raise ChecksumMismatch("the chunk's checksum does not match its bytes; send it again")
            await upload.keep_staged()
        offset = await upload.size()
    state = UploadState(upload_id, offset, length, row.expires_at)
    if offset < length:
        return state, None
    return state, await _complete(session, actor, settings, row)


async def _receive(
    sink: storage.Sink,
    chunks: AsyncIterator[bytes],
    current: int,
    length: int,
    on_too_large: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Write the body into ``sink``; a body that goes past the declared length is refused whole
    (``on_too_large`` takes back what was written of it). When the body stops early (the client
    went away), what arrived is kept: tus resumes from there."""
    written = 0
    try:
        async for chunk in chunks:
            if current + written + len(chunk) > length:
                sink.discard()
                if on_too_large is not None:
                    await on_too_large()  # nothing past the declared length, nothing half-counted
                raise TooLarge(f"the body goes past the declared Upload-Length of {length} bytes")
            await sink.write(chunk)
            written += len(chunk)
    finally:
        await sink.flush()


def _checksum(header: str | None) -> tuple[Any, bytes]:
    if not header:
        return None, b""
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise BadRequest(f"checksum algorithm {algorithm!r} is not supported; use one of {', '.join(CHECKSUMS)}")
    try:
        return CHECKSUMS[algorithm](), base64.b64decode(value, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum must be '<algorithm> <base64 digest>'") from None


async def _complete(session: AsyncSession, actor: Identity, settings: Settings, row: Any) -> uuid.UUID:
    """The last byte arrived: probe it, then keep it as a video or remove it with the reason."""
    path = storage.upload_file(settings, row.id)
    await session.execute(delete(uploads).where(uploads.c.campus_id == actor.campus_id, uploads.c.id == row.id))
    try:
        # ffprobe and two short decodes: a second or so, off the event loop
        found = await anyio.to_thread.run_sync(
            probe, tools.ffprobe(settings.media), tools.ffmpeg(settings.media), path
        )
    except NotPlayable as exc:
        await storage.remove(path)
        await session.commit()  # the upload row goes too: its space is freed
        raise NotPlayable(f"{exc}; the upload was removed") from None
    course = await session.get(Course, (actor.campus_id, row.course_id))
    if course is None:
        await storage.remove(path)
        raise NotFound("the course of this upload no longer exists")
    video_id: uuid.UUID = row.id
    source = storage.source_file(settings, video_id)
    await storage.move(path, source)
    language = row.language or course.language
    await session.execute(
        insert(videos).values(
            campus_id=actor.campus_id, id=video_id, course_id=row.course_id, uploaded_by=actor.user_id,
            title=row.title, filename=row.filename, size_bytes=row.length, language=row.language,
            probe=MessageToDict(found, preserving_proto_field_name=True),
            duration_ms=found.duration_ms,
            transcript_status="off" if settings.media.transcription_model == "off" else "pending",
        )
    )
    await outbox.record(
        session,
        NewEvent(
            actor.campus_id, video_id, "video_uploaded",
            media_pb2.VideoUploaded(
                course_id=str(row.course_id), filename=row.filename, size_bytes=row.length, language=language,
                source_path=str(source.relative_to(settings.data_dir)), probe=found,
                output_dir=str((storage.media_dir(settings, video_id) / "hls").relative_to(settings.data_dir)),
            ),
            actor_id=actor.user_id,
        ),
    )
    return video_id


async def terminate(session: AsyncSession, actor: Identity, settings: Settings, upload_id: uuid.UUID) -> None:
    await _load_upload(session, actor, upload_id)
    await storage.remove_upload(storage.upload_file(settings, upload_id))
    await session.execute(delete(uploads).where(uploads.c.campus_id == actor.campus_id, uploads.c.id == upload_id))


async def _sweep_expired(session: AsyncSession, settings: Settings) -> None:
    """Unfinished uploads past their expiry give their space back (any campus)."""
    gone = (
        await session.execute(delete(uploads).where(uploads.c.expires_at < datetime.now(UTC)).returning(uploads.c.id))
    ).scalars().all()
    await storage.remove(*(storage.upload_file(settings, upload_id) for upload_id in gone))
