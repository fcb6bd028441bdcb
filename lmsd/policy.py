"""Authorisation: the one place that says who may do what.

Every rule is a row of ``RULES``: an action and the relations to the target that allow it. A
service first scopes its query to the actor's campus (so another campus's rows are simply not
found: 404, never 403, which would confirm they exist), then asks :func:`require` for the action.
The table-driven test walks every endpoint × role × campus against this table's intent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from lmsd.errors import Forbidden


@dataclass(frozen=True)
class Identity:
    """Who is asking: the verified claims of an access token."""

    user_id: uuid.UUID
    campus_id: uuid.UUID
    email: str
    display_name: str
    role: str
    platform_admin: bool = False


class Rel(StrEnum):
    """How the actor relates to the target resource."""

    ANY_MEMBER = "member"  # any signed-in account of the same campus
    LEARNER = "learner"  # campus role learner
    INSTRUCTOR = "instructor"  # campus role instructor (may author courses)
    ADMIN = "admin"  # campus administrator
    PLATFORM_ADMIN = "platform_admin"  # operator of the whole deployment
    COURSE_INSTRUCTOR = "course_instructor"  # teaches this course
    ENROLLED = "enrolled"  # has an active enrolment in this course
    SELF = "self"  # the target is the actor's own record


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[Rel]
    description: str = ""


def _r(*rels: Rel, description: str = "") -> Rule:
    return Rule(frozenset(rels), description)


RULES: dict[str, Rule] = {
    "campus.read": _r(Rel.ANY_MEMBER, Rel.PLATFORM_ADMIN),
    "campus.manage": _r(Rel.PLATFORM_ADMIN),
    "campus.brand": _r(Rel.ADMIN),  # the campus's name, default language and logo
    "user.list": _r(Rel.ADMIN),
    "user.create": _r(Rel.ADMIN),
    "user.read": _r(Rel.ADMIN, Rel.SELF),
    "user.manage": _r(Rel.ADMIN),  # change a campus role
    "sso.manage": _r(Rel.ADMIN),
    "course.read_published": _r(Rel.ANY_MEMBER),
    "course.read_draft": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "course.create": _r(Rel.INSTRUCTOR, Rel.ADMIN),
    "course.update": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "course.export": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "course.import": _r(Rel.INSTRUCTOR, Rel.ADMIN),
    "lesson.read": _r(Rel.ENROLLED, Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "enrolment.self": _r(Rel.LEARNER, Rel.INSTRUCTOR),
    "enrolment.manage": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "enrolment.list": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "quiz.read": _r(Rel.ENROLLED, Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "quiz.read_answers": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "quiz.attempt": _r(Rel.ENROLLED),
    "gradebook.read": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "grades.read_own": _r(Rel.ENROLLED),
    "activity.record": _r(Rel.SELF),  # learners record their own learning activity only
    "progress.read": _r(Rel.SELF, Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "video.upload": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "video.read": _r(Rel.ENROLLED, Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "video.watch": _r(Rel.ENROLLED, Rel.COURSE_INSTRUCTOR, Rel.ADMIN),
    "video.manage": _r(Rel.COURSE_INSTRUCTOR, Rel.ADMIN),  # title, language, transcripts
    "xapi.read_campus": _r(Rel.ADMIN),  # every statement of the campus; others: their own and their courses'
}


@dataclass(frozen=True)
class Relations:
    """What the service found out about the actor and the target (course-level facts)."""

    course_instructor: bool = False
    enrolled: bool = False
    self_target: bool = False
    extra: frozenset[Rel] = field(default_factory=frozenset)


def relations_of(actor: Identity, found: Relations = Relations()) -> frozenset[Rel]:
    rels: set[Rel] = {Rel.ANY_MEMBER}
    if actor.role == "learner":
        rels.add(Rel.LEARNER)
    if actor.role == "instructor":
        rels.add(Rel.INSTRUCTOR)
    if actor.role == "admin":
        rels.add(Rel.ADMIN)
    if actor.platform_admin:
        rels.add(Rel.PLATFORM_ADMIN)
    if found.course_instructor:
        rels.add(Rel.COURSE_INSTRUCTOR)
    if found.enrolled:
        rels.add(Rel.ENROLLED)
    if found.self_target:
        rels.add(Rel.SELF)
    return frozenset(rels | found.extra)


def allowed(actor: Identity, action: str, found: Relations = Relations()) -> bool:
    return bool(RULES[action].allowed & relations_of(actor, found))


def require(actor: Identity, action: str, found: Relations = Relations()) -> None:
    if not allowed(actor, action, found):
        raise Forbidden(f"your role may not {action.replace('.', ' ').replace('_', ' ')}")
