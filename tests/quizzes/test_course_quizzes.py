"""quizzes.course_quizzes: a course's quizzes by title, for those who may read them (the lesson
forms of the instructor's pages); refused to strangers, not found from another campus."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.errors import Forbidden, NotFound
from lmsd.quizzes import service as quizzes
from lmsd.quizzes.schemas import QuizIn
from tests import factories


async def test_course_quizzes_by_title(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher, learner = await factories.user(db, admin, "instructor"), await factories.user(db, admin)
    tree, other = await factories.course(db, teacher), await factories.course(db, teacher)
    for title in ("Week 2", "Week 1"):
        await quizzes.create_quiz(db, teacher, tree.id, QuizIn(title=title, questions=factories.questions()))
    await quizzes.create_quiz(db, teacher, other.id, QuizIn(title="Elsewhere", questions=factories.questions()))
    assert [q.title for q in await quizzes.course_quizzes(db, teacher, tree.id)] == ["Week 1", "Week 2"]
    assert [q.title for q in await quizzes.course_quizzes(db, admin, other.id)] == ["Elsewhere"]
    with pytest.raises(Forbidden):  # not enrolled
        await quizzes.course_quizzes(db, learner, tree.id)
    await factories.enrolment(db, learner, tree)
    assert len(await quizzes.course_quizzes(db, learner, tree.id)) == 2
    empty = await factories.course(db, teacher)
    assert await quizzes.course_quizzes(db, teacher, empty.id) == []


async def test_course_quizzes_of_another_campus_or_no_course_are_not_found(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher = await factories.user(db, admin, "instructor")
    tree = await factories.course(db, teacher)
    await factories.quiz(db, teacher, tree)
    with pytest.raises(NotFound):
        await quizzes.course_quizzes(db, await factories.campus(db), tree.id)
    with pytest.raises(NotFound):
        await quizzes.course_quizzes(db, teacher, uuid.uuid4())
    draft = await factories.course(db, teacher, published=False)
    with pytest.raises(NotFound):  # someone else's draft
        await quizzes.course_quizzes(db, await factories.user(db, admin, "instructor"), draft.id)
