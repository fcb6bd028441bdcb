"""Small factories for service tests: campuses, people, courses, quizzes, enrolments.

Each goes through the service that owns the rows (so a factory breaks when a rule changes, as a
client would) and only flushes: with the ``db`` fixture everything is rolled back after the test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.campuses import service as campuses
from lmsd.contracts.v1.envelope_pb2 import Event
from lmsd.courses import service as courses
from lmsd.courses.schemas import CourseIn, CoursePatch, LessonIn, ModuleIn
from lmsd.db.models import Course, Enrolment, Lesson, Module, Question, Quiz, User, outbox
from lmsd.enrolments import service as enrolments
from lmsd.events.envelope import decode
from lmsd.identity import service as identity
from lmsd.policy import Identity
from lmsd.quizzes import service as quizzes
from lmsd.quizzes.schemas import NumericAnswer, QuestionIn, QuizIn

PASSWORD = "factory-password-2026"


def _tag() -> str:
    return uuid.uuid4().hex[:8]


async def platform_admin(session: AsyncSession) -> Identity:
    """The installer's admin of the test database's campus (it also operates the platform)."""
    user = await session.scalar(select(User).where(User.platform_admin.is_(True)).order_by(User.created_at).limit(1))
    assert user is not None, "the test database has no platform admin"
    return identity.identity_of(user)


async def campus(session: AsyncSession, name: str = "Campus B") -> Identity:
    """A new campus; returns its first admin (campus admin, not platform admin)."""
    root = await platform_admin(session)
    tag = _tag()
    made = await campuses.create_campus(session, root, f"{name} {tag}", f"{tag}.example", f"admin@{tag}.example", PASSWORD)
    admin = await session.scalar(select(User).where(User.campus_id == made.id, User.role == "admin"))
    assert admin is not None
    return identity.identity_of(admin)


async def user(session: AsyncSession, admin: Identity, role: str = "learner", name: str | None = None) -> Identity:
    """A person of the admin's campus with ``role`` (learner, instructor, admin)."""
    tag = _tag()
    made = await identity.create_user(
        session, admin, f"{role}-{tag}@people.example", name or f"{role.title()} {tag}", role, PASSWORD
    )
    return identity.identity_of(made)


@dataclass
class CourseTree:
    course: Course
    modules: list[Module] = field(default_factory=list)
    lessons: list[Lesson] = field(default_factory=list)  # in course order

    @property
    def id(self) -> uuid.UUID:
        return self.course.id


async def course(
    session: AsyncSession,
    teacher: Identity,
    *,
    title: str = "Linear Algebra",
    published: bool = True,
    self_enrol: bool = True,
    modules: int = 1,
    lessons: int = 2,
    tags: list[str] | None = None,
    language: str = "en",
) -> CourseTree:
    """A course taught by ``teacher`` with ``modules`` modules of ``lessons`` text lessons each."""
    made = await courses.create_course(
        session, teacher,
        CourseIn(code=f"C{_tag()}", title=title, self_enrol=self_enrol, tags=tags or [], language=language),
    )
    if published:
        made = await courses.update_course(session, teacher, made.id, CoursePatch(status="published"), str(made.version))
    tree = CourseTree(made)
    for m in range(modules):
        module = await courses.create_module(session, teacher, made.id, ModuleIn(title=f"Module {m + 1}"))
        tree.modules.append(module)
        for n in range(lessons):
            tree.lessons.append(
                await courses.create_lesson(
                    session, teacher, module.id, LessonIn(title=f"Lesson {m + 1}.{n + 1}", body=f"Text {n + 1}")
                )
            )
    return tree


def questions() -> list[QuestionIn]:
    """One question of each kind, 1 point each; the right answers are in ``RIGHT``."""
    return [
        QuestionIn(kind="single", prompt="2 + 2?", options=["3", "4", "5"], answer=1),
        QuestionIn(kind="multiple", prompt="Primes?", options=["2", "4", "5", "9"], answer=[2, 0]),
        QuestionIn(kind="numeric", prompt="Pi?", answer=NumericAnswer(value=3.14, tolerance=0.01)),
        QuestionIn(kind="short_text", prompt="Capital of France?", answer=["Paris", "  paris  "]),
    ]


RIGHT: list[Any] = [1, [0, 2], 3.141, "PARIS"]  # answers to questions(), in order
WRONG: list[Any] = [0, [0], 3.2, "Lyon"]


@dataclass
class QuizMade:
    quiz: Quiz
    questions: list[Question]
    lesson: Lesson | None

    @property
    def id(self) -> uuid.UUID:
        return self.quiz.id

    def answers(self, values: list[Any]) -> dict[str, Any]:
        return {str(q.id): v for q, v in zip(self.questions, values, strict=True)}


async def quiz(
    session: AsyncSession,
    teacher: Identity,
    tree: CourseTree,
    *,
    items: list[QuestionIn] | None = None,
    max_attempts: int = 0,
    as_lesson: bool = True,
) -> QuizMade:
    """A quiz of the course (default: one question of each kind), as a lesson of its first module."""
    made, qs = await quizzes.create_quiz(
        session, teacher, tree.id, QuizIn(title=f"Quiz {_tag()}", questions=items or questions(), max_attempts=max_attempts)
    )
    lesson = None
    if as_lesson:
        lesson = await courses.create_lesson(
            session, teacher, tree.modules[0].id, LessonIn(title="Quiz", kind="quiz", quiz_id=made.id)
        )
        tree.lessons.append(lesson)
    return QuizMade(made, qs, lesson)


async def enrolment(session: AsyncSession, learner: Identity, tree: CourseTree, by: Identity | None = None) -> Enrolment:
    """The learner enrolled in the course: by themselves, or by ``by`` (staff)."""
    if by is None:
        return await enrolments.enrol_self(session, learner, tree.id)
    return await enrolments.enrol_user(session, by, tree.id, learner.user_id, None, None)


def patch(**changes: Any) -> CoursePatch:
    """A CoursePatch with only ``changes`` set (validated as the API would)."""
    return msgspec.convert(changes, CoursePatch)


async def recorded(session: AsyncSession, aggregate_id: uuid.UUID) -> list[Event]:
    """The events the services recorded in the outbox for one aggregate, in version order."""
    rows = await session.execute(
        select(outbox.c.payload).where(outbox.c.aggregate_id == aggregate_id).order_by(outbox.c.version)
    )
    return [decode(row[0]) for row in rows]


def kinds(events: list[Event]) -> list[str]:
    return [e.WhichOneof("body") or "" for e in events]
