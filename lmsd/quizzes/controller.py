"""HTTP for quizzes, attempts and the gradebook."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.policy import Identity
from lmsd.quizzes import service
from lmsd.quizzes.schemas import (
    AttemptIn,
    AttemptOut,
    Gradebook,
    GradebookRow,
    GradeCell,
    QuestionOut,
    QuestionResult,
    QuizIn,
    QuizOut,
)


def quiz_out(quiz, questions, with_answers: bool) -> QuizOut:  # type: ignore[no-untyped-def]
    return QuizOut(
        id=quiz.id, course_id=quiz.course_id, title=quiz.title, max_attempts=quiz.max_attempts,
        version=quiz.version,
        questions=[
            QuestionOut(q.id, q.kind, q.prompt, list(q.options), q.points, q.answer if with_answers else None)
            for q in questions
        ],
    )


class QuizController(Controller):
    path = "/api/v1"
    tags = ["quizzes"]

    @post("/courses/{course_id:uuid}/quizzes")
    async def create(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID, data: QuizIn) -> Response[QuizOut]:
        """Create a quiz with its questions (course instructors and admins)."""
        quiz, questions = await service.create_quiz(db, identity, course_id, data)
        return Response(quiz_out(quiz, questions, True), status_code=201)

    @get("/quizzes/{quiz_id:uuid}")
    async def get_quiz(self, db: AsyncSession, identity: Identity, quiz_id: uuid.UUID) -> QuizOut:
        """The quiz; answers are included only for the course's staff."""
        quiz, questions, rel = await service.load_quiz(db, identity, quiz_id)
        return quiz_out(quiz, questions, policy.allowed(identity, "quiz.read_answers", rel))

    @post("/quizzes/{quiz_id:uuid}/attempts")
    async def attempt(self, db: AsyncSession, identity: Identity, quiz_id: uuid.UUID, data: AttemptIn) -> Response[AttemptOut]:
        """Submit answers (question id -> answer); graded at once. Attempt limits apply."""
        attempt, results = await service.submit_attempt(db, identity, quiz_id, dict(data.answers))
        body = AttemptOut(
            id=attempt.id, quiz_id=quiz_id, number=attempt.number, score=attempt.score,
            max_score=attempt.max_score, results=[QuestionResult(*r) for r in results],
            submitted_at=attempt.submitted_at,
        )
        return Response(body, status_code=201)

    @get("/courses/{course_id:uuid}/gradebook")
    async def gradebook(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID) -> Gradebook:
        """Every learner's best score per quiz (course instructors and admins)."""
        return await _gradebook(db, identity, course_id, only_self=False)

    @get("/courses/{course_id:uuid}/grades/me")
    async def my_grades(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID) -> Gradebook:
        """Your own row of the gradebook."""
        return await _gradebook(db, identity, course_id, only_self=True)


async def _gradebook(db: AsyncSession, identity: Identity, course_id: uuid.UUID, *, only_self: bool) -> Gradebook:
    quizzes, maxima, rows = await service.gradebook(db, identity, course_id, only_self=only_self)
    out = []
    for user, cells in rows:
        grades = [GradeCell(q.id, cells[q.id][0], maxima.get(q.id, 0.0), cells[q.id][1]) for q in quizzes]
        out.append(
            GradebookRow(
                user.id, user.display_name, grades,
                total=sum(g.best_score or 0.0 for g in grades), total_max=sum(g.max_score for g in grades),
            )
        )
    return Gradebook(course_id, [q.id for q in quizzes], out)
