"""Courses, modules, lessons: the service owns the queries, the transactions and the rules.

Every query is scoped to the actor's campus first: rows of another campus are not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination, policy
from lmsd.contracts.v1 import catalog_pb2
from lmsd.courses.schemas import CourseIn, CoursePatch, LessonIn, LessonPatch, ModuleIn
from lmsd.db.models import Course, CourseInstructor, Enrolment, Lesson, Module, User, videos
from lmsd.errors import Conflict, Invalid, NotFound, PreconditionFailed, PreconditionRequired
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from lmsd.policy import Identity


def check_version(current: int, if_match: str | None) -> None:
    """Optimistic concurrency: updates must name the version they were based on."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag you read, so edits are not lost", code="version.required")
    if if_match.strip() == "*":  # RFC 9110: any current representation
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(current):
        raise PreconditionFailed(f"the resource changed (now version {current}); reload and retry", code="version.moved")


def _changes(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (UNSET ones are left alone)."""
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    if not changes:
        raise Invalid("nothing to change", code="patch.empty")
    return changes


async def relations(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> policy.Relations:
    """Does the actor teach / take this course? One round trip for both facts."""
    teaches = (
        select(CourseInstructor.user_id)
        .where(
            CourseInstructor.campus_id == actor.campus_id,
            CourseInstructor.course_id == course_id,
            CourseInstructor.user_id == actor.user_id,
        )
        .exists()
    )
    enrolled = (
        select(Enrolment.id)
        .where(
            Enrolment.campus_id == actor.campus_id,
            Enrolment.course_id == course_id,
            Enrolment.user_id == actor.user_id,
            Enrolment.status.in_(("active", "completed")),
        )
        .exists()
    )
    row = (await session.execute(select(teaches, enrolled))).one()
    return policy.Relations(course_instructor=bool(row[0]), enrolled=bool(row[1]))


async def load_course(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Course, policy.Relations]:
    """The course if the actor may see it at all; drafts are invisible to non-staff (404)."""
    query = select(Course).where(Course.campus_id == actor.campus_id, Course.id == course_id)
    if for_update:
        query = query.with_for_update()
    course = await session.scalar(query)
    if course is None:
        raise NotFound("no such course")
    rel = await relations(session, actor, course_id)
    if course.status != "published" and not policy.allowed(actor, "course.read_draft", rel):
        raise NotFound("no such course")
    return course, rel


async def managed_course(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> Course:
    """The course if the actor may change it (its instructors, campus admins): 404 for a course
    they may not see, 403 for one they may only read."""
    course, rel = await load_course(session, actor, course_id)
    policy.require(actor, "course.update", rel)
    return course


async def catalog(
    session: AsyncSession,
    actor: Identity,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    q: str | None = None,
    language: str | None = None,
    tag: str | None = None,
    status: str | None = None,
) -> pagination.Page[Course]:
    size = pagination.limit_of(limit)
    after = pagination.decode(cursor)
    query = select(Course).where(Course.campus_id == actor.campus_id)
    wanted = status or "published"
    if wanted not in ("draft", "published", "archived"):
        raise Invalid("status must be draft, published or archived", field="status", code="course.status_unknown")
    if wanted != "published" and not policy.allowed(actor, "course.read_draft"):
        # instructors see their own unpublished courses only
        taught = select(CourseInstructor.course_id).where(
            CourseInstructor.campus_id == actor.campus_id, CourseInstructor.user_id == actor.user_id
        )
        query = query.where(Course.id.in_(taught))
    query = query.where(Course.status == wanted)
    if q:
        query = query.where(Course.title.ilike(f"%{_escape_like(q[:100])}%", escape="\\"))
    if language:
        query = query.where(Course.language == language)
    if tag:
        query = query.where(Course.tags.contains([tag]))
    if after is not None:
        query = query.where(Course.id > after)
    rows = (await session.scalars(query.order_by(Course.id).limit(size + 1))).all()
    return pagination.page_of(rows, size)


async def catalog_facets(session: AsyncSession, actor: Identity, *, max_tags: int = 200) -> tuple[list[str], list[str]]:
    """The catalog's filter choices: the languages and tags of the campus's published courses,
    each sorted (at most ``max_tags`` tags)."""
    policy.require(actor, "course.read_published")
    published = (Course.campus_id == actor.campus_id, Course.status == "published")
    languages = (await session.scalars(select(Course.language).where(*published).distinct())).all()
    tag = func.unnest(Course.tags)
    tags = (await session.scalars(select(tag).where(*published).distinct().order_by(tag).limit(max_tags))).all()
    return sorted(languages), sorted(tags)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def create_course(session: AsyncSession, actor: Identity, data: CourseIn) -> Course:
    policy.require(actor, "course.create")
    course = Course(
        campus_id=actor.campus_id,
        code=data.code,
        title=data.title,
        summary=data.summary,
        language=data.language,
        tags=list(dict.fromkeys(data.tags)),
        self_enrol=data.self_enrol,
        status="draft",
    )
    session.add(course)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a course with code {data.code!r} already exists on this campus", field="code", code="course.code_taken") from None
    session.add(CourseInstructor(campus_id=actor.campus_id, course_id=course.id, user_id=actor.user_id))
    await session.flush()
    await session.refresh(course)
    return course


async def update_course(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, patch: CoursePatch, if_match: str | None
) -> Course:
    course, rel = await load_course(session, actor, course_id, for_update=True)
    policy.require(actor, "course.update", rel)
    check_version(course.version, if_match)
    changes = _changes(patch)
    if "tags" in changes:
        changes["tags"] = list(dict.fromkeys(changes["tags"]))
    was = course.status
    for key, value in changes.items():
        setattr(course, key, value)
    course.version += 1
    course.updated_at = func.now()
    await session.flush()
    await session.refresh(course)
    facts: dict[str, Any] = {"code": course.code, "title": course.title, "language": course.language, "tags": course.tags}
    if course.status == "published" and was != "published":
        event = NewEvent(actor.campus_id, course.id, "course_published",
                         catalog_pb2.CoursePublished(**facts, course_version=course.version), actor_id=actor.user_id)
    else:
        event = NewEvent(actor.campus_id, course.id, "course_updated",
                         catalog_pb2.CourseUpdated(**facts, status=course.status, course_version=course.version),
                         actor_id=actor.user_id)
    await outbox.record(session, event)
    return course


async def outline(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID
) -> tuple[Course, list[User], list[Module], dict[uuid.UUID, list[Lesson]]]:
    course, _ = await load_course(session, actor, course_id)
    instructors = (
        await session.scalars(
            select(User)
            .join(CourseInstructor, (CourseInstructor.campus_id == User.campus_id) & (CourseInstructor.user_id == User.id))
            .where(CourseInstructor.campus_id == actor.campus_id, CourseInstructor.course_id == course_id)
            .order_by(User.display_name)
        )
    ).all()
    modules = (
        await session.scalars(
            select(Module)
            .where(Module.campus_id == actor.campus_id, Module.course_id == course_id)
            .order_by(Module.position, Module.id)
        )
    ).all()
    lessons = (
        await session.scalars(
            select(Lesson)
            .where(Lesson.campus_id == actor.campus_id, Lesson.course_id == course_id)
            .order_by(Lesson.position, Lesson.id)
        )
    ).all()
    by_module: dict[uuid.UUID, list[Lesson]] = {m.id: [] for m in modules}
    for lesson in lessons:
        by_module.setdefault(lesson.module_id, []).append(lesson)
    return course, list(instructors), list(modules), by_module


async def add_instructor(session: AsyncSession, actor: Identity, course_id: uuid.UUID, user_id: uuid.UUID) -> None:
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "course.update", rel)
    user = await session.get(User, (actor.campus_id, user_id))
    if user is None:
        raise NotFound("no such user on this campus")
    if user.role not in ("instructor", "admin"):
        raise Invalid("only instructors and admins can teach a course", field="user_id", code="course.teacher_role")
    exists = await session.get(CourseInstructor, (actor.campus_id, course_id, user_id))
    if exists is None:
        session.add(CourseInstructor(campus_id=actor.campus_id, course_id=course_id, user_id=user_id))
        await session.flush()


# -- modules and lessons --------------------------------------------------------------------


async def _next_position(session: AsyncSession, model: Any, where: Sequence[Any]) -> int:
    current = await session.scalar(select(func.max(model.position)).where(*where))
    return 0 if current is None else int(current) + 1


async def create_module(session: AsyncSession, actor: Identity, course_id: uuid.UUID, data: ModuleIn) -> Module:
    _, rel = await load_course(session, actor, course_id, for_update=True)
    policy.require(actor, "course.update", rel)
    where = [Module.campus_id == actor.campus_id, Module.course_id == course_id]
    position = data.position if data.position is not None else await _next_position(session, Module, where)
    if data.position is not None:
        await session.execute(
            update(Module).where(*where, Module.position >= position).values(position=Module.position + 1)
        )
    module = Module(campus_id=actor.campus_id, course_id=course_id, title=data.title, position=position)
    session.add(module)
    await session.flush()
    return module


async def load_module(session: AsyncSession, actor: Identity, module_id: uuid.UUID) -> tuple[Module, policy.Relations]:
    module = await session.get(Module, (actor.campus_id, module_id))
    if module is None:
        raise NotFound("no such module")
    _, rel = await load_course(session, actor, module.course_id)
    return module, rel


async def rename_module(
    session: AsyncSession, actor: Identity, module_id: uuid.UUID, title: str, if_match: str | None
) -> Module:
    module, rel = await load_module(session, actor, module_id)
    policy.require(actor, "course.update", rel)
    check_version(module.version, if_match)
    module.title = title
    module.version += 1
    await session.flush()
    return module


async def delete_module(session: AsyncSession, actor: Identity, module_id: uuid.UUID) -> None:
    module, rel = await load_module(session, actor, module_id)
    policy.require(actor, "course.update", rel)
    await session.delete(module)
    await session.flush()


async def reorder(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, ids: list[uuid.UUID], *, module_id: uuid.UUID | None
) -> None:
    """Set the order of a course's modules (module_id None) or of one module's lessons."""
    _, rel = await load_course(session, actor, course_id, for_update=True)
    policy.require(actor, "course.update", rel)
    if module_id is None:
        model: Any = Module
        where = [Module.campus_id == actor.campus_id, Module.course_id == course_id]
    else:
        model = Lesson
        where = [Lesson.campus_id == actor.campus_id, Lesson.module_id == module_id, Lesson.course_id == course_id]
    existing = set((await session.scalars(select(model.id).where(*where))).all())
    if set(ids) != existing or len(ids) != len(existing):
        raise Invalid("ids must list every item exactly once", field="ids", code="outline.order_incomplete")
    for position, item in enumerate(ids):
        await session.execute(update(model).where(*where, model.id == item).values(position=position))
    await session.flush()


async def create_lesson(session: AsyncSession, actor: Identity, module_id: uuid.UUID, data: LessonIn) -> Lesson:
    module, rel = await load_module(session, actor, module_id)
    policy.require(actor, "course.update", rel)
    _check_kind(data.kind, data.video_id, data.quiz_id)
    await _check_video(session, actor.campus_id, module.course_id, data.video_id)
    where = [Lesson.campus_id == actor.campus_id, Lesson.module_id == module_id]
    position = data.position if data.position is not None else await _next_position(session, Lesson, where)
    if data.position is not None:
        await session.execute(
            update(Lesson).where(*where, Lesson.position >= position).values(position=Lesson.position + 1)
        )
    lesson = Lesson(
        campus_id=actor.campus_id,
        module_id=module_id,
        course_id=module.course_id,
        position=position,
        title=data.title,
        kind=data.kind,
        body=data.body,
        video_id=data.video_id,
        quiz_id=data.quiz_id,
    )
    session.add(lesson)
    await session.flush()
    return lesson


def _check_kind(kind: str, video_id: uuid.UUID | None, quiz_id: uuid.UUID | None) -> None:
    if kind == "video" and video_id is None:
        raise Invalid("a video lesson needs video_id", field="video_id", code="lesson.video_missing")
    if kind == "quiz" and quiz_id is None:
        raise Invalid("a quiz lesson needs quiz_id", field="quiz_id", code="lesson.quiz_missing")


async def _check_video(
    session: AsyncSession, campus_id: uuid.UUID, course_id: uuid.UUID, video_id: uuid.UUID | None
) -> None:
    """A lesson plays a video uploaded to its own course."""
    if video_id is None:
        return
    found = await session.scalar(
        select(videos.c.id).where(videos.c.campus_id == campus_id, videos.c.id == video_id, videos.c.course_id == course_id)
    )
    if found is None:
        raise Invalid("video_id names no video of this course (upload it to the course first)", field="video_id", code="lesson.video_unknown")


async def get_lesson(session: AsyncSession, actor: Identity, lesson_id: uuid.UUID) -> Lesson:
    lesson = await session.get(Lesson, (actor.campus_id, lesson_id))
    if lesson is None:
        raise NotFound("no such lesson")
    _, rel = await load_course(session, actor, lesson.course_id)
    policy.require(actor, "lesson.read", rel)
    return lesson


async def update_lesson(
    session: AsyncSession, actor: Identity, lesson_id: uuid.UUID, patch: LessonPatch, if_match: str | None
) -> Lesson:
    lesson = await session.get(Lesson, (actor.campus_id, lesson_id), with_for_update=True)
    if lesson is None:
        raise NotFound("no such lesson")
    _, rel = await load_course(session, actor, lesson.course_id)
    policy.require(actor, "course.update", rel)
    check_version(lesson.version, if_match)
    changes = _changes(patch)
    # checked before the lesson changes: a refused edit leaves nothing for the session to flush
    after = {"video_id": lesson.video_id, "quiz_id": lesson.quiz_id, **changes}
    _check_kind(lesson.kind, after["video_id"], after["quiz_id"])
    if "video_id" in changes:
        await _check_video(session, actor.campus_id, lesson.course_id, changes["video_id"])
    for key, value in changes.items():
        setattr(lesson, key, value)
    lesson.version += 1
    await session.flush()
    return lesson


async def my_courses(session: AsyncSession, actor: Identity) -> tuple[list[Course], list[Course]]:
    """(courses I'm enrolled in, courses I teach), each ordered by title."""
    enrolled = (
        await session.scalars(
            select(Course)
            .join(Enrolment, (Enrolment.campus_id == Course.campus_id) & (Enrolment.course_id == Course.id))
            .where(
                Enrolment.campus_id == actor.campus_id,
                Enrolment.user_id == actor.user_id,
                Enrolment.status.in_(("active", "completed")),
            )
            .order_by(Course.title)
        )
    ).all()
    teaching = (
        await session.scalars(
            select(Course)
            .join(
                CourseInstructor,
                (CourseInstructor.campus_id == Course.campus_id) & (CourseInstructor.course_id == Course.id),
            )
            .where(CourseInstructor.campus_id == actor.campus_id, CourseInstructor.user_id == actor.user_id)
            .order_by(Course.title)
        )
    ).all()
    return list(enrolled), list(teaching)
