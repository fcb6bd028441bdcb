"""The video platform (migration 0006, docs/video.md): tus uploads in progress, videos and their
transcripts. Core tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from lmsd.db.models.base import Base

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
    Index("ix_uploads_expires", "expires_at"),  # the sweep of expired uploads
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
    Index("ix_videos_course", "campus_id", "course_id", "created_at"),  # a course's videos, in order
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
