"""Transcripts: reading one, an instructor's edit published as the next revision, asking for an
automatic transcription (the media worker's job), and the save both of them end in."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.contracts.v1 import media_pb2
from lmsd.db.models import video_transcripts, videos
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from lmsd.media import storage, subtitles
from lmsd.media.schemas import CueOut, TranscriptOut
from lmsd.media.videos import load_video, valid_language
from lmsd.policy import Identity
from lmsd.settings import Settings


async def transcript(session: AsyncSession, actor: Identity, video_id: uuid.UUID, language: str | None) -> TranscriptOut:
    row, course = await load_video(session, actor, video_id)
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
    row, course = await load_video(session, actor, video_id, "video.manage")
    lang = language or row.language or course.language
    if not valid_language(lang):
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
  model = excluded.model, cues = excluded.cues, updated_by = excluded.updated_by, updated_at = excluded.updated_at
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
    await storage.write_subtitles(settings, video_id, language, cues, duration_s)
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


async def request_transcription(
    session: AsyncSession, actor: Identity, settings: Settings, video_id: uuid.UUID, language: str | None
) -> str:
    row, course = await load_video(session, actor, video_id, "video.manage")
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
