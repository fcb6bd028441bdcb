"""What the learner's pages share: a course's outline, the learner's standing in it, and names.

Progress comes from the learning projections (``lmsd.learning.service.progress``), which the
worker fills asynchronously from the events these pages record. The rows (courses, modules,
lessons, enrolments) are the services' own: the pages read their attributes and never query.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from lmsd import policy
from lmsd.courses import service as courses
from lmsd.enrolments import service as enrolments
from lmsd.learning import service as learning
from lmsd.learning.schemas import ActivityBatch, ActivityIn, ProgressOut
from lmsd.policy import Identity
from lmsd.portal import i18n
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page
from lmsd.server.session import DbSession


def notices() -> dict[str, str]:
    """Messages a redirect may ask the next page to show (``?notice=key``), in the page's language."""
    return {
        "enrolled": _("You are enrolled. Welcome to the course!"),
        "completed": _("Lesson marked as complete."),
        "course-done": _("You have completed every lesson of this course. Well done!"),
        "preview": _("This is a preview: staff activity is not recorded."),
        "saved": _("Your profile has been saved."),
        "already": _("You are already enrolled in this course."),
    }


def notice(key: str | None) -> str:
    return notices().get(key or "", "")


def language_name(code: str) -> str:
    """A course language's name in the page's language (``fr`` → "French"/"français")."""
    try:
        return i18n.language_name(code)
    except Exception:  # an unusual but valid tag Babel does not know
        return code


def kind_name(kind: str) -> str:
    return {"text": _("Reading"), "video": _("Video"), "quiz": _("Quiz")}.get(kind, kind)


def role_name(role: str) -> str:
    return {"learner": _("Learner"), "instructor": _("Instructor"), "admin": _("Administrator")}.get(role, role)


@dataclass
class Outline:
    """A course as :func:`lmsd.courses.service.outline` returns it (course, instructors, modules,
    lessons by module) and how the viewer relates to it."""

    course: Any
    instructors: list[Any]
    modules: list[Any]
    lessons: dict[uuid.UUID, list[Any]]
    rel: policy.Relations

    @property
    def ordered(self) -> list[Any]:
        """Every lesson in reading order: modules in order, their lessons in order."""
        return [lesson for m in self.modules for lesson in self.lessons.get(m.id, [])]

    def index_of(self, lesson_id: uuid.UUID) -> int:
        return next(i for i, item in enumerate(self.ordered) if item.id == lesson_id)


@dataclass
class Standing:
    """The signed-in learner's enrolment in one course and what the projection says of it."""

    enrolment: Any = None
    progress: ProgressOut | None = None
    done: set[uuid.UUID] = field(default_factory=set)
    started: set[uuid.UUID] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.enrolment is not None and self.enrolment.status == "active"

    @property
    def enrolled(self) -> bool:
        return self.enrolment is not None and self.enrolment.status in ("active", "completed")


async def outline_of(db: DbSession, who: Identity, course_id: uuid.UUID) -> Outline:
    course, instructors, modules, lessons = await courses.outline(db, who, course_id)
    rel = await courses.relations(db, who, course_id)
    return Outline(course, instructors, modules, lessons, rel)


async def standing_of(db: DbSession, who: Identity, course_id: uuid.UUID) -> Standing:
    """The learner's own enrolment (whatever its status) and its progress."""
    enrolment = await enrolments.own_enrolment(db, who, course_id)
    if enrolment is None or enrolment.status == "withdrawn":
        return Standing(enrolment)
    found = await learning.progress(db, who, enrolment.id)
    return Standing(
        enrolment, found,
        done={p.lesson_id for p in found.lessons if p.completed_at is not None},
        started={p.lesson_id for p in found.lessons if p.started_at is not None},
    )


def fraction(outline: Outline, standing: Standing) -> float:
    ids = [lesson.id for lesson in outline.ordered]
    if not ids:
        return 0.0
    if standing.enrolment is not None and standing.enrolment.status == "completed":
        return 1.0
    return len([i for i in ids if i in standing.done]) / len(ids)


def continue_at(outline: Outline, standing: Standing) -> Any:
    """The first lesson not completed, in outline order; when all are, the last one opened."""
    ordered = outline.ordered
    for lesson in ordered:
        if lesson.id not in standing.done:
            return lesson
    last = standing.progress.last_lesson_id if standing.progress is not None else None
    return next((lesson for lesson in ordered if lesson.id == last), ordered[-1] if ordered else None)


async def record(db: DbSession, page: Page, standing: Standing, lesson_id: uuid.UUID, kind: str) -> None:
    """One learning event of the learner's enrolment, through the same service as the API."""
    assert page.who is not None and standing.enrolment is not None
    batch = ActivityBatch(events=[ActivityIn(enrolment_id=standing.enrolment.id, type=kind, lesson_id=lesson_id)])  # type: ignore[arg-type]
    await learning.record_activity(db, page.who, batch, page.settings.events.max_batch)
