"""The quizzes service on the real database, each test in a rolled-back transaction: questions
checked when written, attempts graded, limited and recorded, the gradebook, who sees what."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.errors import Conflict, Forbidden, Invalid, NotFound
from lmsd.quizzes import service as quizzes
from lmsd.quizzes.schemas import NumericAnswer, QuestionIn, QuizIn
from tests import factories as make


async def test_questions_are_checked_when_the_quiz_is_written(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    tree = await make.course(db, teacher)
    bad = [
        QuestionIn(kind="single", prompt="?", options=["only one"], answer=0),
        QuestionIn(kind="single", prompt="?", options=["a", "b"], answer=2),
        QuestionIn(kind="multiple", prompt="?", options=["a", "b"], answer=[0, 0]),
        QuestionIn(kind="short_text", prompt="?", options=["a"], answer=["a"]),
        QuestionIn(kind="numeric", prompt="?", answer=NumericAnswer(value=float("inf"))),
    ]
    for question in bad:
        with pytest.raises(Invalid):
            async with db.begin_nested():  # the quiz row written before the check goes too
                await quizzes.create_quiz(db, teacher, tree.id, QuizIn(title="Bad", questions=[question]))
    assert (await quizzes.gradebook(db, teacher, tree.id))[0] == []  # no quiz was kept
    learner = await make.user(db, admin)
    with pytest.raises(Forbidden):
        await quizzes.create_quiz(db, learner, tree.id, QuizIn(title="Mine", questions=make.questions()))
    made = await make.quiz(db, teacher, tree)
    assert [q.position for q in made.questions] == [0, 1, 2, 3]
    # stored in normal form: sorted indexes, normalised accepted texts
    assert made.questions[1].answer == [0, 2] and made.questions[3].answer == ["paris", "paris"]


async def test_attempts_are_graded_limited_and_recorded_on_the_enrolment(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher)
    made = await make.quiz(db, teacher, tree, max_attempts=2)
    with pytest.raises(Forbidden):  # not enrolled
        await quizzes.submit_attempt(db, learner, made.id, made.answers(make.RIGHT))
    enrolment = await make.enrolment(db, learner, tree)

    first, results = await quizzes.submit_attempt(db, learner, made.id, made.answers(make.WRONG))
    assert (first.number, first.score, first.max_score) == (1, 0.0, 4.0)
    assert [r[1] for r in results] == [False] * 4
    partial = made.answers(make.RIGHT)
    del partial[str(made.questions[0].id)]  # an unanswered question is wrong, not an error
    second, results = await quizzes.submit_attempt(db, learner, made.id, partial)
    assert (second.number, second.score) == (2, 3.0) and [r[1] for r in results] == [False, True, True, True]
    with pytest.raises(Conflict):  # max_attempts=2
        await quizzes.submit_attempt(db, learner, made.id, made.answers(make.RIGHT))

    events = await make.recorded(db, enrolment.id)
    assert make.kinds(events)[-4:] == ["quiz_attempt_submitted", "quiz_attempt_graded"] * 2
    graded = events[-1].quiz_attempt_graded
    assert made.lesson is not None
    assert (graded.score, graded.max_score, graded.attempt_number) == (3.0, 4.0, 2)
    assert graded.lesson_id == str(made.lesson.id) and graded.quiz_id == str(made.id)


async def test_bad_answers_and_other_campuses(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher)
    made = await make.quiz(db, teacher, tree)
    await make.enrolment(db, learner, tree)
    with pytest.raises(Invalid):
        await quizzes.submit_attempt(db, learner, made.id, {str(uuid.uuid4()): 1})
    with pytest.raises(Invalid):
        await quizzes.submit_attempt(db, learner, made.id, {"not-a-question": 1})
    # wrong types are wrong answers, not errors
    attempt, _ = await quizzes.submit_attempt(db, learner, made.id, made.answers([True, "0", [1.5], ["paris"]]))
    assert attempt.score == 0.0
    with pytest.raises(NotFound):
        await quizzes.load_quiz(db, learner, uuid.uuid4())
    other_admin = await make.campus(db)
    with pytest.raises(NotFound):  # another campus's quiz does not exist there
        await quizzes.load_quiz(db, other_admin, made.id)
    with pytest.raises(NotFound):
        await quizzes.submit_attempt(db, other_admin, made.id, made.answers(make.RIGHT))


async def test_the_gradebook_shows_best_scores_and_attempts_need_an_enrolment(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    ann = await make.user(db, admin, name="Ann Learner")
    bob = await make.user(db, admin, name="Bob Learner")
    tree = await make.course(db, teacher)
    made = await make.quiz(db, teacher, tree)
    other = await make.quiz(db, teacher, tree, as_lesson=False)
    for who in (ann, bob):
        await make.enrolment(db, who, tree)
    await quizzes.submit_attempt(db, ann, made.id, made.answers(make.WRONG))
    await quizzes.submit_attempt(db, ann, made.id, made.answers(make.RIGHT))
    await quizzes.submit_attempt(db, ann, made.id, made.answers(make.WRONG))

    with pytest.raises(Forbidden):  # a learner of the campus who is not enrolled
        await quizzes.submit_attempt(db, await make.user(db, admin), made.id, made.answers(make.RIGHT))
    with pytest.raises(Forbidden):  # nor the course's instructor: attempts are the enrolled's
        await quizzes.submit_attempt(db, teacher, made.id, made.answers(make.RIGHT))

    listed, maxima, rows = await quizzes.gradebook(db, teacher, tree.id)
    assert {q.id for q in listed} == {made.id, other.id} and maxima[made.id] == 4.0
    by_name = {user.display_name: scores for user, scores in rows}
    assert by_name["Ann Learner"][made.id] == (4.0, 3)
    assert by_name["Bob Learner"][made.id] == (None, 0) and by_name["Ann Learner"][other.id] == (None, 0)
    _, _, own = await quizzes.gradebook(db, bob, tree.id, only_self=True)
    assert [user.id for user, _ in own] == [bob.user_id]
    with pytest.raises(Forbidden):
        await quizzes.gradebook(db, bob, tree.id)
    with pytest.raises(NotFound):
        await quizzes.gradebook(db, await make.campus(db), tree.id)
