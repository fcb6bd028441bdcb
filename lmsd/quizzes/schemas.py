from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
Option = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class NumericAnswer(msgspec.Struct, forbid_unknown_fields=True):
    value: float
    tolerance: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class QuestionIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["single", "multiple", "numeric", "short_text"]
    prompt: Prompt
    # single: index; multiple: indexes; numeric: {value, tolerance}; short_text: accepted answers
    answer: int | list[int | str] | NumericAnswer
    options: Annotated[list[Option], msgspec.Meta(max_length=20)] = []
    points: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 1


class QuizIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    questions: Annotated[list[QuestionIn], msgspec.Meta(min_length=1, max_length=200)]
    max_attempts: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0


class QuestionOut(msgspec.Struct, omit_defaults=True):
    id: uuid.UUID
    kind: str
    prompt: str
    options: list[str]
    points: int
    answer: Any = None  # only for the course's staff


class QuizOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    title: str
    max_attempts: int
    version: int
    questions: list[QuestionOut]


class AttemptIn(msgspec.Struct, forbid_unknown_fields=True):
    answers: Annotated[dict[str, int | float | str | list[int]], msgspec.Meta(max_length=200)]


class QuestionResult(msgspec.Struct):
    question_id: uuid.UUID
    correct: bool
    points: float


class AttemptOut(msgspec.Struct):
    id: uuid.UUID
    quiz_id: uuid.UUID
    number: int
    score: float
    max_score: float
    results: list[QuestionResult]
    submitted_at: datetime


class GradeCell(msgspec.Struct):
    quiz_id: uuid.UUID
    best_score: float | None
    max_score: float
    attempts: int


class GradebookRow(msgspec.Struct):
    user_id: uuid.UUID
    display_name: str
    grades: list[GradeCell]
    total: float
    total_max: float


class Gradebook(msgspec.Struct):
    course_id: uuid.UUID
    quizzes: list[uuid.UUID]
    rows: list[GradebookRow]
