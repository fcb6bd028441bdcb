"""Enrolments: the service decides who may enrol whom, and keeps one enrolment per person."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination, policy
from lmsd.contracts.v1 import learning_pb2
from lmsd.courses.service import load_course
from lmsd.db.models import CourseInstructor, Enrolment, User
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from lmsd.policy import Identity


async def _existing(session: AsyncSession, campus_id: uuid.UUID, course_id: uuid.UUID, user_id: uuid.UUID) -> Enrolment | None:
    return await session.scalar(
        select(Enrolment).where(
            Enrolment.campus_id == campus_id, Enrolment.course_id == course_id, Enrolment.user_id == user_id
        ).with_for_update()
    )


async def active_enrolment_id(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> uuid.UUID | None:
    """The actor's own active enrolment in a course, if any (where their learning activity goes)."""
    return await session.scalar(
        select(Enrolment.id).where(
            Enrolment.campus_id == actor.campus_id, Enrolment.course_id == course_id,
            Enrolment.user_id == actor.user_id, Enrolment.status == "active",
        )
    )


async def own_enrolment(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> Enrolment | None:
    """The actor's own enrolment in a course of their campus, whatever its status, or None."""
    return await session.scalar(
        select(Enrolment).where(
            Enrolment.campus_id == actor.campus_id, Enrolment.course_id == course_id,
            Enrolment.user_id == actor.user_id,
        )
    )


async def enrol_self(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> Enrolment:
    course, rel = await load_course(session, actor, course_id)
    policy.require(actor, "enrolment.self", rel)
    if course.status != "published" or not course.self_enrol:
        raise Conflict("this course is not open for self-enrolment", code="enrolment.closed")
    return await _enrol(session, actor, course_id, actor.user_id, None, None)


async def enrol_user(
    session: AsyncSession,
    actor: Identity,
    course_id: uuid.UUID,
    user_id: uuid.UUID,
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> Enrolment:
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "enrolment.manage", rel)
    if await session.get(User, (actor.campus_id, user_id)) is None:
        raise NotFound("no such user on this campus")
    if starts_at and ends_at and ends_at <= starts_at:
        raise Invalid("ends_at must be after starts_at", field="ends_at", code="enrolment.ends_before_start")
    return await _enrol(session, actor, course_id, user_id, starts_at, ends_at)


async def enrol_by_email(session: AsyncSession, actor: Identity, course_id: uuid.UUID, email: str) -> Enrolment:
    """Enrol the account of this campus with this e-mail address (any case), as staff."""
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "enrolment.manage", rel)
    address = email.strip().lower()
    if "@" not in address:
        raise Invalid("enter the person's e-mail address", field="email", code="enrolment.email_required")
    user_id = await session.scalar(select(User.id).where(User.campus_id == actor.campus_id, User.email == address))
    if user_id is None:
        raise NotFound("nobody on this campus has this e-mail address", field="email", code="enrolment.unknown_email")
    return await _enrol(session, actor, course_id, user_id, None, None)


async def _enrol(
    session: AsyncSession,
    actor: Identity,
    course_id: uuid.UUID,
    user_id: uuid.UUID,
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> Enrolment:
    existing = await _existing(session, actor.campus_id, course_id, user_id)
    if existing is not None:
        if existing.status != "withdrawn":
            raise Conflict("already enrolled in this course", code="enrolment.exists")
        existing.status = "active"
        await session.flush()
        await _created(session, actor, existing)
        return existing
    enrolment = Enrolment(
        campus_id=actor.campus_id,
        course_id=course_id,
        user_id=user_id,
        enrolled_by=None if user_id == actor.user_id else actor.user_id,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(enrolment)
    await session.flush()
    await session.refresh(enrolment)
    await _created(session, actor, enrolment)
    return enrolment


async def _created(session: AsyncSession, actor: Identity, enrolment: Enrolment) -> None:
    body = learning_pb2.EnrolmentCreated(
        course_id=str(enrolment.course_id),
        user_id=str(enrolment.user_id),
        enrolled_by="" if enrolment.user_id == actor.user_id else str(actor.user_id),
    )
    await outbox.record(session, NewEvent(actor.campus_id, enrolment.id, "enrolment_created", body, actor_id=actor.user_id))


async def list_enrolments(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, cursor: str | None, limit: int | None
) -> pagination.Page[Enrolment]:
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "enrolment.list", rel)
    size = pagination.limit_of(limit)
    after = pagination.decode(cursor)
    query = select(Enrolment).where(Enrolment.campus_id == actor.campus_id, Enrolment.course_id == course_id)
    if after is not None:
        query = query.where(Enrolment.id > after)
    rows = (await session.scalars(query.order_by(Enrolment.id).limit(size + 1))).all()
    return pagination.page_of(rows, size)


async def list_with_people(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, cursor: str | None, limit: int | None
) -> tuple[pagination.Page[Enrolment], dict[uuid.UUID, User]]:
    """A page of :func:`list_enrolments` and the accounts it names, by id."""
    found = await list_enrolments(session, actor, course_id, cursor, limit)
    if not found.items:
        return found, {}
    users = await session.scalars(
        select(User).where(User.campus_id == actor.campus_id, User.id.in_([e.user_id for e in found.items]))
    )
    return found, {u.id: u for u in users}


async def counts(session: AsyncSession, actor: Identity, course_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Active and completed enrolments per course, for the courses among ``course_ids`` whose
    enrolments the actor may list (campus admins: any; instructors: those they teach). A course
    with nobody enrolled, or not the actor's to see, is absent."""
    if not course_ids:
        return {}
    query = (
        select(Enrolment.course_id, func.count())
        .where(
            Enrolment.campus_id == actor.campus_id,
            Enrolment.course_id.in_(course_ids),
            Enrolment.status.in_(("active", "completed")),
        )
        .group_by(Enrolment.course_id)
    )
    if not policy.allowed(actor, "enrolment.list"):  # without a course's relation: campus admins only
        taught = select(CourseInstructor.course_id).where(
            CourseInstructor.campus_id == actor.campus_id, CourseInstructor.user_id == actor.user_id
        )
        query = query.where(Enrolment.course_id.in_(taught))
    return {row[0]: int(row[1]) for row in await session.execute(query)}


async def set_status(
    session: AsyncSession, actor: Identity, enrolment_id: uuid.UUID, status: str, *, staff: bool = False
) -> Enrolment:
    """Change an enrolment's status. A learner may withdraw themselves; anything else, and any
    change made with ``staff`` (the instructor's pages, even on their own enrolment), needs
    ``enrolment.manage`` on the course."""
    enrolment = await session.get(Enrolment, (actor.campus_id, enrolment_id), with_for_update=True)
    if enrolment is None:
        raise NotFound("no such enrolment")
    _, rel = await load_course(session, actor, enrolment.course_id)
    own_withdrawal = enrolment.user_id == actor.user_id and status == "withdrawn"
    if staff or not own_withdrawal:
        policy.require(actor, "enrolment.manage", rel)
    was = enrolment.status
    enrolment.status = status
    await session.flush()
    if status == "withdrawn" and was != "withdrawn":
        body = learning_pb2.EnrolmentWithdrawn(course_id=str(enrolment.course_id), user_id=str(enrolment.user_id))
        await outbox.record(session, NewEvent(actor.campus_id, enrolment.id, "enrolment_withdrawn", body, actor_id=actor.user_id))
    return enrolment
