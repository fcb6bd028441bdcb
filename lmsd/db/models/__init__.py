"""The database schema as models, one module per area, all on one metadata (``Base.metadata``:
Alembic's target in lmsd/db/migrations/env.py sees every table once this package is imported).

- ``base``: the metadata, its naming rules, column helpers;
- ``campus``: campuses and identity (users, refresh tokens, password resets, SSO providers);
- ``courses``: courses, instructors, modules, lessons, quizzes, questions, attempts;
- ``learning``: enrolments and the learning projections (progress, grades, xAPI, client event ids);
- ``media``: uploads, videos, transcripts;
- ``events``: the event backbone (outbox, aggregates, consumers, snapshots);
- ``distribution``: the Citus plan for every table.

Callers import from here (``from lmsd.db.models import Course``), not from the modules.
"""

from __future__ import annotations

from lmsd.db.models.base import NAMING, Base
from lmsd.db.models.campus import Campus, PasswordReset, RefreshToken, SsoProvider, User
from lmsd.db.models.courses import Attempt, Course, CourseInstructor, Lesson, Module, Question, Quiz
from lmsd.db.models.distribution import CITUS_DISTRIBUTED, CITUS_REFERENCE
from lmsd.db.models.events import (
    consumer_applied,
    event_aggregates,
    event_consumers,
    outbox,
    projection_snapshots,
)
from lmsd.db.models.learning import (
    Enrolment,
    client_events,
    grades,
    lesson_progress,
    progress,
    xapi_statements,
)
from lmsd.db.models.media import uploads, video_transcripts, videos

__all__ = [
    "CITUS_DISTRIBUTED",
    "CITUS_REFERENCE",
    "NAMING",
    "Attempt",
    "Base",
    "Campus",
    "Course",
    "CourseInstructor",
    "Enrolment",
    "Lesson",
    "Module",
    "PasswordReset",
    "Question",
    "Quiz",
    "RefreshToken",
    "SsoProvider",
    "User",
    "client_events",
    "consumer_applied",
    "event_aggregates",
    "event_consumers",
    "grades",
    "lesson_progress",
    "outbox",
    "progress",
    "projection_snapshots",
    "uploads",
    "video_transcripts",
    "videos",
    "xapi_statements",
]
