"""ORM models, kept together so that Alembic sees them all.

Citus plan (docs/citus.md): ``campuses`` is a reference table; every other table belongs to one
campus, is distributed by ``campus_id`` and colocated with the others, so every primary key,
unique constraint and foreign key between them starts with ``campus_id``. ``CITUS`` below is the
machine-readable form of that plan; ``tests/unit/test_citus_plan.py`` holds the metadata to it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Campus(Base):
    """A tenant. One deployment may host several campuses."""

    __tablename__ = "campuses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(253))
    created_at: Mapped[datetime] = _now()
    # the portal's branding (campus admins): a logo image and the language of anonymous pages
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    logo_hash: Mapped[str | None] = mapped_column(String(32), nullable=True)  # sha256 prefix, set with the logo
    default_locale: Mapped[str] = mapped_column(String(16), server_default="en", default="en")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("campus_id", "email"),
        ForeignKeyConstraint(["campus_id"], ["campuses.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # learner | instructor | admin (of this campus)
    platform_admin: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    locale: Mapped[str] = mapped_column(String(16), server_default="en", default="en")
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (
        UniqueConstraint("campus_id", "code"),
        ForeignKeyConstraint(["campus_id"], ["campuses.id"], ondelete="CASCADE"),
        Index("ix_courses_catalog", "campus_id", "status", "id"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, server_default="", default="")
    language: Mapped[str] = mapped_column(String(16), server_default="en", default="en")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}", default=list)
    status: Mapped[str] = mapped_column(String(16), server_default="draft", default="draft")
    self_enrol: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    version: Mapped[int] = mapped_column(Integer, server_default="1", default=1)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class CourseInstructor(Base):
    __tablename__ = "course_instructors"
    __table_args__ = (
        ForeignKeyConstraint(["campus_id", "course_id"], ["courses.campus_id", "courses.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
        Index("ix_course_instructors_user", "campus_id", "user_id"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class Module(Base):
    __tablename__ = "modules"
    __table_args__ = (
        ForeignKeyConstraint(["campus_id", "course_id"], ["courses.campus_id", "courses.id"], ondelete="CASCADE"),
        Index("ix_modules_course", "campus_id", "course_id", "position"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    course_id: Mapped[uuid.UUID] = mapped_column()
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    version: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


class Lesson(Base):
    __tablename__ = "lessons"
    __table_args__ = (
        ForeignKeyConstraint(["campus_id", "module_id"], ["modules.campus_id", "modules.id"], ondelete="CASCADE"),
        Index("ix_lessons_module", "campus_id", "module_id", "position"),
        Index("ix_lessons_course", "campus_id", "course_id", "position"),  # the course outline
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    module_id: Mapped[uuid.UUID] = mapped_column()
    course_id: Mapped[uuid.UUID] = mapped_column()  # denormalised: authorisation needs it per lesson
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))  # text | video | quiz
    body: Mapped[str] = mapped_column(Text, server_default="", default="")
    video_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    quiz_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    version: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


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
    created_at: Mapped[datetime] = _now()


class Quiz(Base):
    __tablename__ = "quizzes"
    __table_args__ = (
        ForeignKeyConstraint(["campus_id", "course_id"], ["courses.campus_id", "courses.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    course_id: Mapped[uuid.UUID] = mapped_column()
    title: Mapped[str] = mapped_column(String(300))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="0", default=0)  # 0: unlimited
    version: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (
        ForeignKeyConstraint(["campus_id", "quiz_id"], ["quizzes.campus_id", "quizzes.id"], ondelete="CASCADE"),
        Index("ix_questions_quiz", "campus_id", "quiz_id", "position"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    quiz_id: Mapped[uuid.UUID] = mapped_column()
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # single | multiple | numeric | short_text
    prompt: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSONB, server_default="[]", default=list)
    answer: Mapped[Any] = mapped_column(JSONB)  # never shown to learners
    points: Mapped[int] = mapped_column(Integer, server_default="1", default=1)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("campus_id", "quiz_id", "user_id", "number"),
        ForeignKeyConstraint(["campus_id", "quiz_id"], ["quizzes.campus_id", "quizzes.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
        Index("ix_attempts_course_user", "campus_id", "course_id", "user_id"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    quiz_id: Mapped[uuid.UUID] = mapped_column()
    course_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    number: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    score: Mapped[float] = mapped_column()
    max_score: Mapped[float] = mapped_column()
    submitted_at: Mapped[datetime] = _now()


class RefreshToken(Base):
    """One link of a refresh-token family; reuse of a used link revokes the whole family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        UniqueConstraint("campus_id", "token_hash"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
        Index("ix_refresh_tokens_family", "campus_id", "family_id"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    family_id: Mapped[uuid.UUID] = mapped_column()
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()


class PasswordReset(Base):
    __tablename__ = "password_resets"
    __table_args__ = (
        UniqueConstraint("campus_id", "token_hash"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SsoProvider(Base):
    """An OpenID Connect identity provider a campus signs in with (its university's IdP)."""

    __tablename__ = "sso_providers"
    __table_args__ = (
        UniqueConstraint("campus_id", "slug"),
        ForeignKeyConstraint(["campus_id"], ["campuses.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret: Mapped[str] = mapped_column(String(500))
    scopes: Mapped[str] = mapped_column(String(500), server_default="openid email profile", default="openid email profile")
    default_role: Mapped[str] = mapped_column(String(20), server_default="learner", default="learner")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true", default=True)
    # a campus admin vouches that this provider only hands out addresses their owners control:
    # its e-mails count as verified without email_verified: true (lmsd.identity.sso)
    trust_email: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)


# -- the event backbone (docs/events.md) ---------------------------------------------------------
# Core tables: written with bulk SQL by lmsd.events, never through the ORM's unit of work.


def _ts(name: str, nullable: bool = True) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


outbox = Table(
    "outbox",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),  # identity: commit-independent order of writing
    Column("id", Uuid, nullable=False),  # the event id; Nats-Msg-Id
    Column("subject", Text, nullable=False),
    Column("aggregate", String(32), nullable=False),
    Column("aggregate_id", Uuid, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the encoded lmsd.contracts.v1.Event
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "seq"),
    UniqueConstraint("campus_id", "id", name="uq_outbox_event"),
    UniqueConstraint("campus_id", "aggregate", "aggregate_id", "version", name="uq_outbox_aggregate_version"),
    Index("ix_outbox_created_at", "created_at", postgresql_using="brin"),  # pruning
)
event_aggregates = Table(
    "event_aggregates",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("aggregate", String(32), nullable=False),
    Column("aggregate_id", Uuid, nullable=False),
    Column("version", BigInteger, nullable=False),  # last version written (optimistic concurrency)
    Column("published_version", BigInteger, server_default="0", nullable=False),
    Column("published_seq", BigInteger, server_default="0", nullable=False),  # its stream sequence
    Column("attempts", Integer, server_default="0", nullable=False),  # failed publishes of the next event
    Column("last_error", Text, server_default="", nullable=False),
    PrimaryKeyConstraint("campus_id", "aggregate", "aggregate_id"),
    # the relay's work list: outbox rows are never updated; an aggregate has unpublished events
    # while version > published_version
    Index("ix_event_aggregates_pending", "published_seq", postgresql_where=text("version > published_version")),
)
consumer_applied = Table(
    "consumer_applied",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("consumer", String(64), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("applied_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "consumer", "event_id"),
)
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
    _ts("last_activity_at"),
    _ts("completed_at"),
    PrimaryKeyConstraint("campus_id", "enrolment_id"),
)
lesson_progress = Table(
    "lesson_progress",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("enrolment_id", Uuid, nullable=False),
    Column("lesson_id", Uuid, nullable=False),
    _ts("started_at"),
    _ts("completed_at"),
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
    _ts("last_graded_at"),
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
event_consumers = Table(
    "event_consumers",
    Base.metadata,
    Column("name", String(64), primary_key=True),
    Column("applied", BigInteger, server_default="0", nullable=False),
    Column("last_stream_seq", BigInteger, server_default="0", nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)
projection_snapshots = Table(
    "projection_snapshots",
    Base.metadata,
    Column("projection", String(64), primary_key=True),
    Column("stream_seq", BigInteger, nullable=False),  # every event up to here is in the copy
    Column("events", BigInteger, nullable=False),
    Column("taken_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


# The distribution plan, read by migrations (when the citus extension is present) and by tests.
# The video platform (migration 0006, docs/video.md).
uploads = Table(
    "uploads",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("course_id", Uuid, nullable=False),
    Column("owner_id", Uuid, nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("filename", Text, nullable=False),
    Column("filetype", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("language", String(35)),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("campus_id", "id"),
    ForeignKeyConstraint(["campus_id", "course_id"], ["courses.campus_id", "courses.id"], ondelete="CASCADE"),
)
videos = Table(
    "videos",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("course_id", Uuid, nullable=False),
    Column("uploaded_by", Uuid, nullable=False),
    Column("title", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("language", String(35)),
    Column("status", String(16), nullable=False, server_default="uploaded"),
    Column("progress", SmallInteger, nullable=False, server_default="0"),
    Column("error", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("probe", JSONB, nullable=False),
    Column("duration_ms", BigInteger, nullable=False, server_default="0"),
    Column("renditions", JSONB, nullable=False, server_default="[]"),
    Column("audio", JSONB),
    Column("poster", Text, nullable=False, server_default=""),
    Column("sprite_vtt", Text, nullable=False, server_default=""),
    Column("transcript_status", String(16), nullable=False, server_default="pending"),
    Column("transcript_error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "id"),
    ForeignKeyConstraint(["campus_id", "course_id"], ["courses.campus_id", "courses.id"], ondelete="CASCADE"),
)
video_transcripts = Table(
    "video_transcripts",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("video_id", Uuid, nullable=False),
    Column("language", String(35), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("source", String(16), nullable=False),
    Column("model", Text, nullable=False, server_default=""),
    Column("cues", JSONB, nullable=False),
    Column("updated_by", Uuid),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "video_id", "language"),
    ForeignKeyConstraint(["campus_id", "video_id"], ["videos.campus_id", "videos.id"], ondelete="CASCADE"),
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


CITUS_REFERENCE = ("campuses", "event_consumers", "projection_snapshots")
CITUS_DISTRIBUTED = {
    name: "campus_id"
    for name in (
        "users",
        "courses",
        "course_instructors",
        "modules",
        "lessons",
        "enrolments",
        "quizzes",
        "questions",
        "attempts",
        "refresh_tokens",
        "password_resets",
        "sso_providers",
        "outbox",
        "event_aggregates",
        "consumer_applied",
        "progress",
        "lesson_progress",
        "grades",
        "xapi_statements",
        "uploads",
        "videos",
        "video_transcripts",
        "client_events",
    )
}
