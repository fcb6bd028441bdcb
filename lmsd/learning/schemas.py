"""Wire shapes of learning activity (msgspec)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Ms = Annotated[int, msgspec.Meta(ge=0, le=24 * 3600 * 1000)]


class ActivityIn(msgspec.Struct, forbid_unknown_fields=True):
    """One learning event as a client (portal, mobile app, xAPI-style batcher) reports it."""

    enrolment_id: uuid.UUID
    type: Literal["lesson_started", "lesson_completed", "video_watched"]
    lesson_id: uuid.UUID
    occurred_at: datetime | None = None  # the client's clock; defaults to the time of recording
    segments: Annotated[list[tuple[Ms, Ms]], msgspec.Meta(max_length=1000)] = []  # video_watched: [start_ms, end_ms]
    # the client's own event id (a UUID it made): an event sent again with the same id is
    # recorded once (an offline queue resending after a lost answer); it becomes the event id
    id: uuid.UUID | None = None


class ActivityBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[ActivityIn], msgspec.Meta(min_length=1)]
    # optimistic concurrency: enrolment id -> the version the client last saw (409 if it moved)
    expected_versions: dict[uuid.UUID, Annotated[int, msgspec.Meta(ge=0)]] = {}


class EnrolmentVersion(msgspec.Struct):
    enrolment_id: uuid.UUID
    version: int


class ActivityAccepted(msgspec.Struct, omit_defaults=True):
    accepted: int  # events recorded now
    enrolments: list[EnrolmentVersion]
    # events whose client id was recorded before (skipped); in the answer only when not 0
    duplicates: int = 0


class LessonProgressOut(msgspec.Struct):
    lesson_id: uuid.UUID
    started_at: datetime | None
    completed_at: datetime | None
    watched_ms: int
    watched: list[list[int]]


class GradeOut(msgspec.Struct):
    quiz_id: uuid.UUID
    attempts: int
    best_score: float
    max_score: float


class ProgressOut(msgspec.Struct):
    enrolment_id: uuid.UUID
    course_id: uuid.UUID
    user_id: uuid.UUID
    version: int  # events recorded for this enrolment
    events_applied: int  # of which the projection has applied (eventually equal)
    lessons_total: int
    lessons_started: int
    lessons_completed: int
    watched_ms: int
    quiz_attempts: int
    last_lesson_id: uuid.UUID | None
    last_activity_at: datetime | None
    completed_at: datetime | None
    lessons: list[LessonProgressOut]
    grades: list[GradeOut]


class StatementPage(msgspec.Struct):
    """As an LRS answers GET /statements: ``more`` is the relative URL of the next page or ""."""

    statements: list[dict[str, Any]]
    more: str
