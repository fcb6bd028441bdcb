"""Enrolments and learning: who takes a course, and the learning projections (progress per
enrolment and per lesson, grades, xAPI statements) with the client-chosen event ids they dedupe on.
The projections are Core tables, written with bulk SQL by their consumers (docs/events.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lmsd.db.models.base import Base, now_column, ts_column


class Enrolment(Base):
    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("campus_id", "course_id", "user_id"),
        ForeignKeyConstraint(["campus_id", "course_id"], ["courses.campus_id", "courses.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
        Index("ix_enrolments_user", "campus_id", "user_id", "id"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    course_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), server_default="active", default="active")
    enrolled_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = now_column()
progress = Table(
    "progress",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("enrolment_id", Uuid, nullable=False),
    Column("course_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("lessons_started", Integer, nullable=False),
    Column("lessons_completed", Integer, nullable=False),
    Column("watched_ms", BigInteger, nullable=False),
    Column("quiz_attempts", Integer, nullable=False),
    Column("last_lesson_id", Uuid),
    ts_column("last_activity_at"),
    ts_column("completed_at"),
    PrimaryKeyConstraint("campus_id", "enrolment_id"),
)
lesson_progress = Table(
    "lesson_progress",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("enrolment_id", Uuid, nullable=False),
    Column("lesson_id", Uuid, nullable=False),
    ts_column("started_at"),
    ts_column("completed_at"),
    Column("watched", JSONB, nullable=False),  # merged [start_ms, end_ms] ranges
    Column("watched_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("campus_id", "enrolment_id", "lesson_id"),
)
grades = Table(
    "grades",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("enrolment_id", Uuid, nullable=False),
    Column("quiz_id", Uuid, nullable=False),
    Column("course_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("best_score", Double, nullable=False),
    Column("max_score", Double, nullable=False),
    ts_column("last_graded_at"),
    PrimaryKeyConstraint("campus_id", "enrolment_id", "quiz_id"),
)
xapi_statements = Table(
    "xapi_statements",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("course_id", Uuid, nullable=False),
    Column("verb", Text, nullable=False),
    Column("activity", Text, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("stored", DateTime(timezone=True), nullable=False),
    Column("event", LargeBinary, nullable=False),  # the encoded Event; the statement is built on read
    PrimaryKeyConstraint("campus_id", "id"),
    Index("ix_xapi_statements_stored", "campus_id", "stored", "id"),
)
# Event ids chosen by clients (migration 0008): a re-sent event is recorded once, even after the
# outbox has forgotten it (lmsd.learning.service.record_activity).
client_events = Table(
    "client_events",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("enrolment_id", Uuid, nullable=False),
    Column("recorded_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "id"),
    ForeignKeyConstraint(
        ["campus_id", "enrolment_id"], ["enrolments.campus_id", "enrolments.id"], ondelete="CASCADE"
    ),
    Index("ix_client_events_enrolment", "campus_id", "enrolment_id"),
)
