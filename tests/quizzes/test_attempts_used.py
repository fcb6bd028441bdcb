"""quizzes.attempts_used: how many attempts the actor made at a quiz they may read."""

from __future__ import annotations

import uuid

import pytest

from lmsd.enrolments import service as enrolments
from lmsd.errors import Forbidden, NotFound
from lmsd.quizzes import service as quizzes
from lmsd.quizzes.schemas import QuestionIn, QuizIn
from tests.db import Database
from tests.services import campus_admin, campus_b, member, published_course, rolled_back


async def test_attempts_used_counts_own_attempts_only(database: Database) -> None:
    async with rolled_back(database) as db:
        admin = await campus_admin(db, database)
        teacher = await member(db, admin, "instructor")
        course = await published_course(db, teacher)
        quiz, questions = await quizzes.create_quiz(
            db, teacher, course, QuizIn(title="Q", questions=[QuestionIn(kind="single", prompt="1+1?", answer=1,
                                                                         options=["1", "2"])], max_attempts=3),
        )
        learner, other = await member(db, admin), await member(db, admin)
        for who in (learner, other):
            await enrolments.enrol_self(db, who, course)
        assert await quizzes.attempts_used(db, learner, quiz.id) == 0
        await quizzes.submit_attempt(db, learner, quiz.id, {str(questions[0].id): 1})
        await quizzes.submit_attempt(db, learner, quiz.id, {str(questions[0].id): 0})
        await quizzes.submit_attempt(db, other, quiz.id, {str(questions[0].id): 1})
        assert await quizzes.attempts_used(db, learner, quiz.id) == 2
        assert await quizzes.attempts_used(db, other, quiz.id) == 1
        assert await quizzes.attempts_used(db, teacher, quiz.id) == 0  # staff may read it; made none

        # not enrolled: may not read the quiz; unknown quiz and another campus's: not found
        with pytest.raises(Forbidden):
            await quizzes.attempts_used(db, await member(db, admin), quiz.id)
        with pytest.raises(NotFound):
            await quizzes.attempts_used(db, learner, uuid.uuid4())
        b = await campus_b(db)
        with pytest.raises(NotFound):
            await quizzes.attempts_used(db, b.admin, quiz.id)
