"""Course export/import: a self-contained JSON archive (docs/course-archive.md).

Identifiers are not exported: lessons point at quizzes by a key local to the archive, so an
import makes fresh rows on any campus of any deployment and export(import(x)) == x.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.courses import service
from lmsd.courses.schemas import Code, Lang, LessonKind, Tag, Title
from lmsd.db.models import Course, CourseInstructor, Lesson, Module, Question, Quiz
from lmsd.errors import Conflict, Invalid
from lmsd.policy import Identity
from lmsd.quizzes import grading

FORMAT: Literal["lmsd-course"] = "lmsd-course"
VERSION = 1


class ArchiveQuestion(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["single", "multiple", "numeric", "short_text"]
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    answer: Any
    options: list[str] = []
    points: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 1


class ArchiveQuiz(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    title: Title
    max_attempts: Annotated[int, msgspec.Meta(ge=0, le=100)]
    questions: Annotated[list[ArchiveQuestion], msgspec.Meta(max_length=200)]


class ArchiveLesson(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    kind: LessonKind
    body: Annotated[str, msgspec.Meta(max_length=200_000)] = ""
    quiz: str | None = None  # key of an ArchiveQuiz
    video: uuid.UUID | None = None  # a media reference; media travel separately


class ArchiveModule(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    lessons: Annotated[list[ArchiveLesson], msgspec.Meta(max_length=500)] = []


class ArchiveCourse(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    title: Title
    summary: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    language: Lang = "en"
    tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []
    self_enrol: bool = False


class Archive(msgspec.Struct, forbid_unknown_fields=True):
    format: Literal["lmsd-course"]
    version: int
    course: ArchiveCourse
    modules: Annotated[list[ArchiveModule], msgspec.Meta(max_length=500)] = []
    quizzes: Annotated[list[ArchiveQuiz], msgspec.Meta(max_length=500)] = []


async def export_course(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> Archive:
    course, _instructors, modules, lessons = await service.outline(session, actor, course_id)
    policy.require(actor, "course.export", await service.relations(session, actor, course_id))
    quizzes = (
        await session.scalars(
            select(Quiz).where(Quiz.campus_id == actor.campus_id, Quiz.course_id == course_id).order_by(Quiz.title, Quiz.id)
        )
    ).all()
    keys = {q.id: f"quiz-{i + 1}" for i, q in enumerate(quizzes)}
    questions = (
        await session.scalars(
            select(Question)
            .where(Question.campus_id == actor.campus_id, Question.quiz_id.in_(list(keys)))
            .order_by(Question.position)
        )
    ).all()
    by_quiz: dict[uuid.UUID, list[ArchiveQuestion]] = {q: [] for q in keys}
    for q in questions:
        by_quiz[q.quiz_id].append(ArchiveQuestion(q.kind, q.prompt, q.answer, list(q.options), q.points))  # type: ignore[arg-type]
    return Archive(
        format=FORMAT,
        version=VERSION,
        course=ArchiveCourse(course.code, course.title, course.summary, course.language, list(course.tags), course.self_enrol),
        modules=[
            ArchiveModule(
                m.title,
                [
                    ArchiveLesson(ls.title, ls.kind, ls.body, keys.get(ls.quiz_id) if ls.quiz_id else None, ls.video_id)  # type: ignore[arg-type]
                    for ls in lessons.get(m.id, [])
                ],
            )
            for m in modules
        ],
        quizzes=[ArchiveQuiz(keys[q.id], q.title, q.max_attempts, by_quiz[q.id]) for q in quizzes],
    )


async def import_course(session: AsyncSession, actor: Identity, archive: Archive, code: str | None) -> Course:
    policy.require(actor, "course.import")
    if archive.version != VERSION:
        raise Invalid(f"archive version {archive.version} is not supported (this lmsd reads {VERSION})", field="version", code="archive.version_unsupported")
    quiz_keys = [q.key for q in archive.quizzes]
    if len(set(quiz_keys)) != len(quiz_keys):
        raise Invalid("quiz keys must be unique within the archive", field="quizzes", code="archive.quiz_key_duplicate")
    for am in archive.modules:
        for lesson in am.lessons:
            if lesson.quiz is not None and lesson.quiz not in quiz_keys:
                raise Invalid(f"lesson {lesson.title!r} points at unknown quiz {lesson.quiz!r}", field="quiz", code="archive.quiz_unknown")
    c = archive.course
    course = Course(
        campus_id=actor.campus_id, code=code or c.code, title=c.title, summary=c.summary, language=c.language,
        tags=list(c.tags), self_enrol=c.self_enrol, status="draft",
    )
    session.add(course)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a course with code {course.code!r} exists; import with ?code=NEW", field="code", code="course.code_taken") from None
    session.add(CourseInstructor(campus_id=actor.campus_id, course_id=course.id, user_id=actor.user_id))
    await session.flush()
    quiz_ids: dict[str, uuid.UUID] = {}
    for aq in archive.quizzes:
        quiz = Quiz(campus_id=actor.campus_id, id=uuid.uuid4(), course_id=course.id, title=aq.title, max_attempts=aq.max_attempts)
        session.add(quiz)
        await session.flush()  # no ORM relationships: flush parents before children
        quiz_ids[aq.key] = quiz.id
        for position, q in enumerate(aq.questions):
            answer = grading.validate_question(q.kind, q.options, _answer_in(q.kind, q.answer))
            session.add(
                Question(
                    campus_id=actor.campus_id, quiz_id=quiz.id, position=position, kind=q.kind, prompt=q.prompt,
                    options=list(q.options), answer=answer, points=q.points,
                )
            )
    for m_pos, am in enumerate(archive.modules):
        row = Module(campus_id=actor.campus_id, id=uuid.uuid4(), course_id=course.id, position=m_pos, title=am.title)
        session.add(row)
        await session.flush()
        for l_pos, al in enumerate(am.lessons):
            session.add(
                Lesson(
                    campus_id=actor.campus_id, module_id=row.id, course_id=course.id, position=l_pos,
                    title=al.title, kind=al.kind, body=al.body, video_id=al.video,
                    quiz_id=quiz_ids[al.quiz] if al.quiz else None,
                )
            )
    await session.flush()
    await session.refresh(course)
    return course


def _answer_in(kind: str, answer: Any) -> Any:
    """Numeric answers are stored as {value, tolerance}; grading's validator wants attributes."""
    if kind == "numeric" and isinstance(answer, dict):
        return msgspec.convert(answer, NumericIn)
    return answer


class NumericIn(msgspec.Struct):
    value: float
    tolerance: float = 0.0
