"""Courses and quizzes: a course, its instructors, its outline (modules and lessons), its quizzes,
their questions and the attempts at them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from lmsd.db.models.base import Base, now_column


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
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


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
    submitted_at: Mapped[datetime] = now_column()
