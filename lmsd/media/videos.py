"""Video records: who may see or manage one, what the API shows of it, the fields an instructor
edits. A video's bytes are the uploads' and the transcoder's business (``uploads``, ``storage``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.courses.schemas import Lang
from lmsd.courses.service import load_course
from lmsd.db.models import Course, videos
from lmsd.errors import Invalid, NotFound
from lmsd.media.schemas import RenditionOut, VideoOut, VideoPatch
from lmsd.policy import Identity


def valid_language(tag: str) -> bool:
    """Is ``tag`` a language tag the courses accept (``en``, ``pt-BR``)?"""
    try:
        msgspec.convert(tag, Lang)
    except msgspec.ValidationError:
        return False
    return True


async def load_video(
    session: AsyncSession, actor: Identity, video_id: uuid.UUID, action: str = "video.read"
) -> tuple[Any, Course]:
    """The video's row and its course, if ``actor`` may do ``action`` on it."""
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
    row, course = await load_video(session, actor, video_id)
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
    await load_video(session, actor, video_id, "video.manage")
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
