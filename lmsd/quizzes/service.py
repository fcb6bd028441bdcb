"""Quizzes and attempts. Learners never receive answers; attempts are graded on submission."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.contracts.v1 import learning_pb2
from lmsd.courses.service import load_course
from lmsd.db.models import Attempt, Enrolment, Lesson, Question, Quiz, User
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from lmsd.policy import Identity
from lmsd.quizzes import grading
from lmsd.quizzes.schemas import QuizIn


async def create_quiz(session: AsyncSession, actor: Identity, course_id: uuid.UUID, data: QuizIn) -> tuple[Quiz, list[Question]]:
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "course.update", rel)
    quiz = Quiz(campus_id=actor.campus_id, course_id=course_id, title=data.title, max_attempts=data.max_attempts)
    session.add(quiz)
    await session.flush()
    questions = []
    for position, q in enumerate(data.questions):
        answer = grading.validate_question(q.kind, q.options, q.answer)
        questions.append(
            Question(
                campus_id=actor.campus_id, quiz_id=quiz.id, position=position, kind=q.kind,
                prompt=q.prompt, options=list(q.options), answer=answer, points=q.points,
            )
        )
    session.add_all(questions)
    await session.flush()
    return quiz, questions


async def course_quizzes(session: AsyncSession, actor: Identity, course_id: uuid.UUID) -> list[Quiz]:
    """A course's quizzes by title (without their questions), for those who may read them."""
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "quiz.read", rel)
    rows = await session.scalars(
        select(Quiz).where(Quiz.campus_id == actor.campus_id, Quiz.course_id == course_id).order_by(Quiz.title, Quiz.id)
    )
    return list(rows.all())


async def load_quiz(
    session: AsyncSession, actor: Identity, quiz_id: uuid.UUID
) -> tuple[Quiz, list[Question], policy.Relations]:
    quiz = await session.get(Quiz, (actor.campus_id, quiz_id))
    if quiz is None:
        raise NotFound("no such quiz")
    _, rel = await load_course(session, actor, quiz.course_id)
    policy.require(actor, "quiz.read", rel)
    questions = (
        await session.scalars(
            select(Question)
            .where(Question.campus_id == actor.campus_id, Question.quiz_id == quiz_id)
            .order_by(Question.position)
        )
    ).all()
    return quiz, list(questions), rel


async def attempts_used(session: AsyncSession, actor: Identity, quiz_id: uuid.UUID) -> int:
    """How many attempts the actor has made at a quiz they may read (their own rows only)."""
    quiz = await session.get(Quiz, (actor.campus_id, quiz_id))
    if quiz is None:
        raise NotFound("no such quiz")
    _, rel = await load_course(session, actor, quiz.course_id)
    policy.require(actor, "quiz.read", rel)
    return await _attempts_of(session, actor, quiz_id)


async def _attempts_of(session: AsyncSession, actor: Identity, quiz_id: uuid.UUID) -> int:
    found = await session.scalar(
        select(func.count()).where(
            Attempt.campus_id == actor.campus_id, Attempt.quiz_id == quiz_id, Attempt.user_id == actor.user_id
        )
    )
    return int(found or 0)


async def submit_attempt(
    session: AsyncSession, actor: Identity, quiz_id: uuid.UUID, answers: dict[str, Any]
) -> tuple[Attempt, list[tuple[uuid.UUID, bool, float]]]:
    quiz, questions, rel = await load_quiz(session, actor, quiz_id)
    policy.require(actor, "quiz.attempt", rel)
    by_id = {str(q.id): q for q in questions}
    unknown = [key for key in answers if key not in by_id]
    if unknown:
        raise Invalid(f"answers name questions that are not in this quiz: {', '.join(sorted(unknown)[:3])}", field="answers", code="quiz.answer_unknown_question")
    # Serialise attempts of one learner on one quiz: the enrolment row is the lock.
    enrolment_id = await session.scalar(
        select(Enrolment.id)
        .where(Enrolment.campus_id == actor.campus_id, Enrolment.course_id == quiz.course_id,
               Enrolment.user_id == actor.user_id)
        .with_for_update()
    )
    done = int(
        await session.scalar(
            select(func.count()).where(
                Attempt.campus_id == actor.campus_id, Attempt.quiz_id == quiz_id, Attempt.user_id == actor.user_id
            )
        )
        or 0
    )
    if quiz.max_attempts and done >= quiz.max_attempts:
        raise Conflict(f"no attempts left: this quiz allows {quiz.max_attempts}", code="quiz.attempts_exhausted")
    results = []
    score = 0.0
    for q in questions:
        correct = grading.is_correct(q.kind, q.answer, answers.get(str(q.id)))
        earned = float(q.points) if correct else 0.0
        score += earned
        results.append((q.id, correct, earned))
    attempt = Attempt(
        campus_id=actor.campus_id, quiz_id=quiz_id, course_id=quiz.course_id, user_id=actor.user_id,
        number=done + 1, answers=answers, score=score, max_score=float(sum(q.points for q in questions)),
    )
    session.add(attempt)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("another attempt was submitted at the same time; retry", code="quiz.attempt_concurrent") from None
    await session.refresh(attempt)
    if enrolment_id is not None:  # staff previewing a quiz have no enrolment and no record
        lesson_id = await session.scalar(
            select(Lesson.id).where(Lesson.campus_id == actor.campus_id, Lesson.quiz_id == quiz_id).limit(1)
        )
        ids: dict[str, Any] = {"course_id": str(quiz.course_id), "lesson_id": str(lesson_id or ""), "quiz_id": str(quiz_id),
               "attempt_id": str(attempt.id), "attempt_number": attempt.number}
        await outbox.record(
            session,
            NewEvent(actor.campus_id, enrolment_id, "quiz_attempt_submitted",
                     learning_pb2.QuizAttemptSubmitted(**ids), actor_id=actor.user_id),
            NewEvent(actor.campus_id, enrolment_id, "quiz_attempt_graded",
                     learning_pb2.QuizAttemptGraded(**ids, score=attempt.score, max_score=attempt.max_score),
                     actor_id=actor.user_id),
        )
    return attempt, results


async def gradebook(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, *, only_self: bool = False
) -> tuple[list[Quiz], dict[uuid.UUID, float], list[tuple[User, dict[uuid.UUID, tuple[float | None, int]]]]]:
    """Per learner, per quiz: best score and attempt count. Learners get their own row only."""
    _, rel = await load_course(session, actor, course_id)
    policy.require(actor, "grades.read_own" if only_self else "gradebook.read", rel)
    quizzes = (
        await session.scalars(
            select(Quiz).where(Quiz.campus_id == actor.campus_id, Quiz.course_id == course_id).order_by(Quiz.title, Quiz.id)
        )
    ).all()
    maxima = {
        row.quiz_id: float(row.total or 0)
        for row in await session.execute(
            select(Question.quiz_id, func.sum(Question.points).label("total"))
            .where(Question.campus_id == actor.campus_id, Question.quiz_id.in_([q.id for q in quizzes]))
            .group_by(Question.quiz_id)
        )
    }
    learners_q = (
        select(User)
        .join(Enrolment, (Enrolment.campus_id == User.campus_id) & (Enrolment.user_id == User.id))
        .where(Enrolment.campus_id == actor.campus_id, Enrolment.course_id == course_id)
        .order_by(User.display_name, User.id)
    )
    if only_self:
        learners_q = learners_q.where(User.id == actor.user_id)
    learners = (await session.scalars(learners_q)).all()
    scores: dict[tuple[uuid.UUID, uuid.UUID], tuple[float | None, int]] = {}
    for row in await session.execute(
        select(Attempt.user_id, Attempt.quiz_id, func.max(Attempt.score), func.count())
        .where(Attempt.campus_id == actor.campus_id, Attempt.course_id == course_id)
        .group_by(Attempt.user_id, Attempt.quiz_id)
    ):
        scores[(row[0], row[1])] = (float(row[2]), int(row[3]))
    rows = [(u, {q.id: scores.get((u.id, q.id), (None, 0)) for q in quizzes}) for u in learners]
    return list(quizzes), maxima, rows
