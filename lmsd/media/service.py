"""Videos: resumable uploads (tus 1.0), the video records, playback grants, transcripts.

A tus upload's bytes live in ``<data>/uploads/<upload id>`` (the file's size is the upload's
offset: nothing received is ever lost); its row holds what was declared at creation. When the
last byte arrives the file is probed; a playable video moves to ``<data>/videos/<id>/source``,
gets its row and a ``video_uploaded`` event in the same transaction (the transcoder's job); any
other file is removed with the reason. The video keeps the upload's id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import asyncpg
import msgspec
from google.protobuf.json_format import MessageToDict
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.contracts.v1 import media_pb2
from lmsd.courses.schemas import Lang
from lmsd.courses.service import load_course
from lmsd.credentials import Secrets
from lmsd.db.models import Course, uploads, video_transcripts, videos
from lmsd.errors import Conflict, Forbidden, Invalid, LmsdError, NotFound
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from lmsd.media import playlists, signing, subtitles, tools
from lmsd.media.probe import NotPlayable, probe
from lmsd.media.schemas import (
    CueOut,
    PlaybackOut,
    RenditionOut,
    SubtitleOut,
    TranscriptOut,
    VideoOut,
    VideoPatch,
)
from lmsd.policy import Identity
from lmsd.settings import MediaSettings, Settings

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
CHUNK = 1024 * 1024


class ChecksumMismatch(LmsdError):
    """tus checksum extension: the chunk's checksum does not match; nothing of it was kept."""

    status_code = 460
    title = "Checksum mismatch"


class TooLarge(LmsdError):
    status_code = 413
    title = "Upload too large"


class UnsupportedType(LmsdError):
    status_code = 415
    title = "Unsupported media type"


class BadRequest(LmsdError):
    status_code = 400
    title = "Bad request"


class Gone(LmsdError):
    status_code = 410
    title = "Gone"


# -- paths ------------------------------------------------------------------------------------------
def upload_file(settings: Settings, upload_id: uuid.UUID) -> Path:
    return settings.data_dir / "uploads" / str(upload_id)


def source_file(settings: Settings, video_id: uuid.UUID) -> Path:
    return settings.data_dir / "videos" / str(video_id) / "source"


def media_folder(video_id: uuid.UUID) -> str:
    """The video's folder under the media root, as a URL path (a signing scope)."""
    return f"/media/videos/{video_id}/"


def media_dir(settings: Settings, video_id: uuid.UUID) -> Path:
    return settings.data_dir / "media" / "videos" / str(video_id)


# -- tus: creation, offset, append, termination ---------------------------------------------------------
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
    if language is not None and not _valid_language(language):
        raise Invalid(f"metadata language {language!r} is not a language tag such as 'en' or 'pt-BR'")
    _, found = await load_course(session, actor, course_id)
    policy.require(actor, "video.upload", found)
    await _sweep_expired(session, settings)
    upload_id = uuid.uuid4()
    expires_at = datetime.now(UTC) + timedelta(hours=media.upload_expiry_h)
    path = upload_file(settings, upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    if free < length + settings.runtime.min_free_disk_mb * 1024 * 1024:
        raise TooLarge(f"not enough disk space for a {length}-byte upload ({free} bytes free)")
    await session.execute(
        insert(uploads).values(
            campus_id=actor.campus_id, id=upload_id, course_id=course_id, owner_id=actor.user_id, length=length,
            filename=filename, filetype=filetype, title=title, language=language, expires_at=expires_at,
        )
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return UploadState(upload_id, 0, length, expires_at)


def _valid_language(tag: str) -> bool:
    try:
        msgspec.convert(tag, Lang)
    except msgspec.ValidationError:
        return False
    return True


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
    path = upload_file(settings, upload_id)
    if not path.exists():
        raise NotFound("no such upload")
    return UploadState(upload_id, path.stat().st_size, int(row.length), row.expires_at)


@contextlib.contextmanager
def _exclusive(path: Path) -> Any:
    """One writer per upload at a time (tus forbids concurrent PATCHes of one upload)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("another request is writing this upload; retry when it ends") from None
        yield fd
    finally:
        os.close(fd)


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
    path = upload_file(settings, upload_id)
    if not path.exists():
        raise NotFound("no such upload")
    try:
        offset = int(offset_header or "")
    except ValueError:
        raise BadRequest("Upload-Offset is required and must be a whole number") from None
    digest, expected = _checksum(checksum_header)
    length = int(row.length)
    with _exclusive(path) as fd:
        current = os.fstat(fd).st_size
        if offset != current:
            raise Conflict(f"Upload-Offset {offset} does not match the upload's offset {current}")
        written = 0
        staged = path.with_name(f"{path.name}.chunk") if digest is not None else None
        out_fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if staged else fd
        try:
            async for chunk in chunks:
                if current + written + len(chunk) > length:
                    raise TooLarge(f"the body goes past the declared Upload-Length of {length} bytes")
                if digest is not None:
                    digest.update(chunk)
                os.write(out_fd, chunk)
                written += len(chunk)
        except TooLarge:
            if staged is None:
                os.ftruncate(fd, current)  # nothing past the declared length, nothing half-counted
            raise
        finally:
            if staged is not None:
                os.close(out_fd)
        if staged is not None:
            assert digest is not None
            if digest.digest() != expected:
                staged.unlink(missing_ok=True)
                raise ChecksumMismatch("the chunk's checksum does not match its bytes; send it again")
            with open(staged, "rb") as source:
                shutil.copyfileobj(source, os.fdopen(os.dup(fd), "wb", closefd=True), CHUNK)
            staged.unlink(missing_ok=True)
        offset = os.fstat(fd).st_size
    state = UploadState(upload_id, offset, length, row.expires_at)
    if offset < length:
        return state, None
    return state, await _complete(session, actor, settings, row)


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
    path = upload_file(settings, row.id)
    await session.execute(delete(uploads).where(uploads.c.campus_id == actor.campus_id, uploads.c.id == row.id))
    try:
        # ffprobe and two short decodes: a second or so, off the event loop
        found = await anyio.to_thread.run_sync(
            probe, tools.ffprobe(settings.media), tools.ffmpeg(settings.media), path
        )
    except NotPlayable as exc:
        path.unlink(missing_ok=True)
        await session.commit()  # the upload row goes too: its space is freed
        raise NotPlayable(f"{exc}; the upload was removed") from None
    course = await session.get(Course, (actor.campus_id, row.course_id))
    if course is None:
        path.unlink(missing_ok=True)
        raise NotFound("the course of this upload no longer exists")
    video_id: uuid.UUID = row.id
    source = source_file(settings, video_id)
    source.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, source)
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
                output_dir=str((media_dir(settings, video_id) / "hls").relative_to(settings.data_dir)),
            ),
            actor_id=actor.user_id,
        ),
    )
    return video_id


async def terminate(session: AsyncSession, actor: Identity, settings: Settings, upload_id: uuid.UUID) -> None:
    await _load_upload(session, actor, upload_id)
    path = upload_file(settings, upload_id)
    if path.exists():
        with _exclusive(path):
            path.unlink()
    await session.execute(delete(uploads).where(uploads.c.campus_id == actor.campus_id, uploads.c.id == upload_id))


async def _sweep_expired(session: AsyncSession, settings: Settings) -> None:
    """Unfinished uploads past their expiry give their space back (any campus)."""
    gone = (
        await session.execute(delete(uploads).where(uploads.c.expires_at < datetime.now(UTC)).returning(uploads.c.id))
    ).scalars().all()
    for upload_id in gone:
        upload_file(settings, upload_id).unlink(missing_ok=True)


# -- videos -------------------------------------------------------------------------------------------
async def _load_video(
    session: AsyncSession, actor: Identity, video_id: uuid.UUID, action: str = "video.read"
) -> tuple[Any, Course]:
    row = (
        await session.execute(select(videos).where(videos.c.campus_id == actor.campus_id, videos.c.id == video_id))
    ).one_or_none()
    if row is None:
        raise NotFound("no such video")
    try:
        course, found = await load_course(session, actor, row.course_id)
    except NotFound:
        raise NotFound("no such video") from None
    if not policy.allowed(actor, "video.read", found):
        raise NotFound("no such video")  # what learners may not see does not exist for them
    policy.require(actor, action, found)
    return row, course


def video_out(row: Any, course: Course) -> VideoOut:
    probe_ = row.probe or {}
    return VideoOut(
        id=row.id, course_id=row.course_id, title=row.title, filename=row.filename, size_bytes=row.size_bytes,
        language=row.language or course.language, status=row.status, progress=row.progress, error=row.error,
        duration_s=row.duration_ms / 1000, width=int(probe_.get("width", 0)), height=int(probe_.get("height", 0)),
        renditions=[
            RenditionOut(
                name=r["name"], width=int(r["width"]), height=int(r["height"]), bandwidth=int(r["bandwidth"]),
                codecs=r.get("codecs", ""), remuxed=bool(r.get("remuxed", False)),
            )
            for r in row.renditions or []
        ],
        transcript_status=row.transcript_status, transcript_error=row.transcript_error,
        created_at=row.created_at, updated_at=row.updated_at,
    )


async def get_video(session: AsyncSession, actor: Identity, video_id: uuid.UUID) -> VideoOut:
    row, course = await _load_video(session, actor, video_id)
    return video_out(row, course)


async def course_videos(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> list[VideoOut]:
    course, found = await load_course(session, actor, course_id)
    policy.require(actor, "video.read", found)
    rows = (
        await session.execute(
            select(videos)
            .where(videos.c.campus_id == actor.campus_id, videos.c.course_id == course_id)
            .order_by(videos.c.created_at, videos.c.id)
        )
    ).all()
    return [video_out(row, course) for row in rows]


async def update_video(session: AsyncSession, actor: Identity, video_id: uuid.UUID, patch: VideoPatch) -> VideoOut:
    await _load_video(session, actor, video_id, "video.manage")
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if not changes:
        raise Invalid("nothing to change")
    await session.execute(
        update(videos)
        .where(videos.c.campus_id == actor.campus_id, videos.c.id == video_id)
        .values(**changes, updated_at=datetime.now(UTC))
    )
    return await get_video(session, actor, video_id)


async def video_in_course(session: AsyncSession, campus_id: uuid.UUID, course_id: uuid.UUID, video_id: uuid.UUID) -> bool:
    """For lessons: does this video belong to this course?"""
    found = await session.scalar(
        select(videos.c.id).where(
            videos.c.campus_id == campus_id, videos.c.id == video_id, videos.c.course_id == course_id
        )
    )
    return found is not None


# -- playback -------------------------------------------------------------------------------------------
def _expiry(media: MediaSettings, now: float) -> int:
    # rounded up to the minute: grants made in the same minute are equal (cache friendly)
    return (int(now) + media.url_ttl_s) // 60 * 60 + 60


async def playback(
    session: AsyncSession, actor: Identity, settings: Settings, secrets: Secrets, video_id: uuid.UUID, now: float
) -> PlaybackOut:
    row, course = await _load_video(session, actor, video_id, "video.watch")
    if row.status != "ready":
        detail = f"{row.progress}% transcoded" if row.status in ("uploaded", "transcoding") else row.error
        raise Conflict(f"the video is not ready to play ({row.status}: {detail})")
    expires = _expiry(settings.media, now)
    scope = media_folder(video_id)
    query = signing.scope_query(secrets.media_signing_key, scope, expires)
    languages = await _subtitle_languages(session, actor.campus_id, video_id)
    return PlaybackOut(
        video_id=video_id, title=row.title, duration_s=row.duration_ms / 1000,
        master_url=f"/api/v1/media/videos/{video_id}/master.m3u8?{query}",
        poster_url=f"{scope}hls/{row.poster}?{query}" if row.poster else "",
        thumbnails_url=f"{scope}hls/{row.sprite_vtt}?{query}" if row.sprite_vtt else "",
        subtitles=[
            SubtitleOut(language=lang, label=playlists.language_name(lang), url=f"{scope}subtitles/{quote(lang)}.vtt?{query}")
            for lang in languages
        ],
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


async def _subtitle_languages(session: AsyncSession, campus_id: uuid.UUID, video_id: uuid.UUID) -> list[str]:
    rows = await session.execute(
        select(video_transcripts.c.language)
        .where(video_transcripts.c.campus_id == campus_id, video_transcripts.c.video_id == video_id)
        .order_by(video_transcripts.c.updated_at)
    )
    return list(rows.scalars().all())


@dataclass(frozen=True)
class Grant:
    """The signed query of a master playlist or steering request: it grants the video's folder."""

    expires: int
    scope: str
    sig: str

    def check(self, secrets: Secrets, video_id: uuid.UUID, now: float) -> None:
        if self.scope != media_folder(video_id):
            raise Forbidden("the signature is for another video")
        if self.expires < now:
            raise Forbidden("the playback link expired; open the video again")
        if not signing.verify_scope(secrets.media_signing_key, self.scope, self.expires, self.sig, now):
            raise Forbidden("invalid media signature")

    def query(self) -> str:
        return f"exp={self.expires}&scope={quote(self.scope, safe='')}&sig={self.sig}"

    @classmethod
    def parse(cls, exp: str | None, scope: str | None, sig: str | None) -> Grant:
        if not exp or not scope or not sig:
            raise Forbidden("media URL is not signed")
        try:
            return cls(int(exp), scope, sig)
        except ValueError:
            raise Forbidden("invalid media signature") from None


@functools.lru_cache(maxsize=32)
def _key_file(path: str) -> str:
    """A pathway's signing key, read once per process (a changed key needs a restart, as config does)."""
    return Path(path).read_text().strip()


def routes(settings: Settings, secrets: Secrets, video_id: uuid.UUID, grant: Grant) -> list[playlists.Route]:
    """The origin, then each CDN pathway, with its own signed query for the video's folder."""
    folder = media_folder(video_id)
    found = [playlists.Route("origin", folder, grant.query())]
    for pathway in settings.media.pathways:
        base = pathway.base_url + folder.removeprefix("/media/")
        if pathway.signing == "none":
            query = ""
        else:
            key = _key_file(pathway.key_file) if pathway.key_file else secrets.media_signing_key
            query = signing.scope_query(key, folder, grant.expires)
        found.append(playlists.Route(pathway.id, base, query))
    return found


async def master(
    session: AsyncSession, settings: Settings, secrets: Secrets, video_id: uuid.UUID, grant: Grant, now: float,
    client_ip: str,
) -> str:
    """The master playlist for a signed request (no account: players fetch it by its URL)."""
    grant.check(secrets, video_id, now)
    row = (await session.execute(select(videos).where(videos.c.id == video_id))).one_or_none()
    if row is None or row.status != "ready":
        raise NotFound("no such video")
    languages = await _subtitle_languages(session, row.campus_id, video_id)
    found = routes(settings, secrets, video_id, grant)
    steering_uri = None
    if len(found) > 1:
        steering_uri = f"/api/v1/media/steering/{video_id}?{grant.query()}"
        found = _ordered(settings, found, client_ip, set())
    return playlists.master_playlist(
        row.renditions or [], row.audio, languages, found,
        frame_rate=float((row.probe or {}).get("frame_rate", 0) or 0), steering_uri=steering_uri,
    )


def _ordered(settings: Settings, found: list[playlists.Route], client_ip: str, unhealthy: set[str]) -> list[playlists.Route]:
    priority = steering_priority(settings, client_ip, unhealthy)
    return sorted(found, key=lambda r: priority.index(r.pathway))


def steering_priority(settings: Settings, client_ip: str, unhealthy: set[str]) -> list[str]:
    media = settings.media
    region = playlists.region_of(client_ip, media.region_networks) if client_ip else None
    pathways = [("origin", media.origin_regions), *((p.id, p.regions) for p in media.pathways)]
    return playlists.pathway_priority(pathways, region, unhealthy)


def steering(
    settings: Settings, secrets: Secrets, video_id: uuid.UUID, grant: Grant, now: float, client_ip: str,
    unhealthy: set[str],
) -> dict[str, Any]:
    grant.check(secrets, video_id, now)
    return playlists.steering_manifest(
        steering_priority(settings, client_ip, unhealthy), settings.media.steering_ttl_s,
        f"/api/v1/media/steering/{video_id}?{grant.query()}",
    )


# -- transcripts -------------------------------------------------------------------------------------
async def transcript(session: AsyncSession, actor: Identity, video_id: uuid.UUID, language: str | None) -> TranscriptOut:
    row, course = await _load_video(session, actor, video_id)
    lang = language or row.language or course.language
    found = (
        await session.execute(
            select(video_transcripts).where(
                video_transcripts.c.campus_id == actor.campus_id, video_transcripts.c.video_id == video_id,
                video_transcripts.c.language == lang,
            )
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"the video has no {lang!r} transcript yet (transcription: {row.transcript_status})")
    return transcript_out(video_id, found._mapping)


def transcript_out(video_id: uuid.UUID, row: Any) -> TranscriptOut:
    return TranscriptOut(
        video_id=video_id, language=row["language"], revision=row["revision"], source=row["source"],
        model=row["model"], cues=[CueOut(start_s=c["start_s"], end_s=c["end_s"], text=c["text"]) for c in row["cues"]],
        updated_at=row["updated_at"],
    )


async def publish_transcript(
    session: AsyncSession, actor: Identity, settings: Settings, video_id: uuid.UUID, language: str | None, webvtt: str
) -> TranscriptOut:
    """An instructor's edited transcript replaces the subtitles of its language and is published."""
    row, course = await _load_video(session, actor, video_id, "video.manage")
    lang = language or row.language or course.language
    if not _valid_language(lang):
        raise Invalid(f"{lang!r} is not a language tag such as 'en' or 'pt-BR'")
    cues = subtitles.parse_webvtt(webvtt)
    if not cues:
        raise Invalid("the transcript has no cues")
    duration_s = row.duration_ms / 1000
    if cues[-1].end_s > duration_s + 1.0:
        raise Invalid(f"a cue ends at {cues[-1].end_s:.3f} s, after the end of the video ({duration_s:.3f} s)")
    saved = await save_transcript(
        await outbox.driver_connection(session), settings, actor.campus_id, row.course_id, video_id, lang, cues, "edited", "", actor.user_id,
        duration_s,
    )
    return transcript_out(video_id, saved)


_SAVE_TRANSCRIPT = """
INSERT INTO video_transcripts AS t (campus_id, video_id, language, revision, source, model, cues, updated_by)
VALUES ($1, $2, $3, 1, $4, $5, $6::text::jsonb, $7)
ON CONFLICT (campus_id, video_id, language) DO UPDATE SET revision = t.revision + 1, source = excluded.source,
  model = excluded.model, cues = excluded.cues, updated_by = excluded.updated_by, updated_at = now()
RETURNING *
"""


async def save_transcript(
    conn: asyncpg.Connection,
    settings: Settings,
    campus_id: uuid.UUID,
    course_id: uuid.UUID,
    video_id: uuid.UUID,
    language: str,
    cues: list[subtitles.Cue],
    source: str,
    model: str,
    actor_id: uuid.UUID | None,
    duration_s: float,
) -> asyncpg.Record:
    """Store the cues as the next revision, rewrite the subtitle files, and record
    ``transcript_published`` — in the caller's transaction (the API's request or the worker's job).
    The files are written before the commit; writing them again gives the same files."""
    saved = await conn.fetchrow(
        _SAVE_TRANSCRIPT, campus_id, video_id, language, source, model,
        # as text: the API's driver connection and the worker's encode jsonb differently
        json.dumps([{"start_s": c.start_s, "end_s": c.end_s, "text": c.text} for c in cues]), actor_id,
    )
    assert saved is not None
    await conn.execute(
        "UPDATE videos SET transcript_status = 'ready', transcript_error = '', updated_at = now() "
        "WHERE campus_id = $1 AND id = $2",
        campus_id, video_id,
    )
    write_subtitle_files(settings, video_id, language, cues, duration_s)
    await outbox.append(
        conn,
        [
            NewEvent(
                campus_id, video_id, "transcript_published",
                media_pb2.TranscriptPublished(
                    course_id=str(course_id), language=language, text=subtitles.text_of(cues), cue_count=len(cues),
                    revision=int(saved["revision"]), source=source, model=model,
                ),
                actor_id=actor_id,
            )
        ],
    )
    return saved


def write_subtitle_files(settings: Settings, video_id: uuid.UUID, language: str, cues: list[subtitles.Cue], duration_s: float) -> None:
    folder = media_dir(settings, video_id) / "subtitles"
    subtitles.write_hls_subtitles(cues, folder / language, duration_s, float(settings.media.segment_seconds))
    subtitles.write_webvtt(cues, folder / f"{language}.vtt")


async def request_transcription(
    session: AsyncSession, actor: Identity, settings: Settings, video_id: uuid.UUID, language: str | None
) -> str:
    row, course = await _load_video(session, actor, video_id, "video.manage")
    if settings.media.transcription_model == "off":
        raise Conflict("automatic transcription is off on this campus (media.transcription_model)")
    if row.status != "ready":
        raise Conflict(f"the video is not transcoded yet ({row.status}); it is transcribed when it is")
    lang = language or row.language or course.language
    await session.execute(
        update(videos)
        .where(videos.c.campus_id == actor.campus_id, videos.c.id == video_id)
        .values(transcript_status="pending", transcript_error="", updated_at=datetime.now(UTC))
    )
    await outbox.record(
        session,
        NewEvent(
            actor.campus_id, video_id, "transcription_requested",
            media_pb2.TranscriptionRequested(course_id=str(row.course_id), language=lang), actor_id=actor.user_id,
        ),
    )
    return lang


def now() -> float:
    return time.time()
