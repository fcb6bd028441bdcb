"""What the instructor's pages ask of the courses service: the course to manage
(``managed_course``), moving a module or a lesson one place (``ordering``), and a refused lesson
edit that leaves the lesson as it was. Another campus's ids are not found; learners are refused."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.courses import ordering
from lmsd.courses import service as courses
from lmsd.courses.schemas import LessonPatch
from lmsd.errors import Forbidden, Invalid, NotFound
from lmsd.policy import Identity
from tests import factories


async def _titles(db: AsyncSession, teacher: Identity, course_id: uuid.UUID) -> list[list[str]]:
    _course, _people, modules, lessons = await courses.outline(db, teacher, course_id)
    return [[m.title, *(x.title for x in lessons[m.id])] for m in modules]


async def test_managed_course_for_its_teachers_and_admins_only(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher, other = await factories.user(db, admin, "instructor"), await factories.user(db, admin, "instructor")
    draft = await factories.course(db, teacher, published=False)
    published = await factories.course(db, teacher)
    assert (await courses.managed_course(db, teacher, draft.id)).id == draft.id
    assert (await courses.managed_course(db, admin, draft.id)).id == draft.id
    with pytest.raises(NotFound):  # someone else's draft does not exist for this instructor
        await courses.managed_course(db, other, draft.id)
    with pytest.raises(Forbidden):  # a published one is visible, not theirs to change
        await courses.managed_course(db, other, published.id)
    with pytest.raises(Forbidden):
        await courses.managed_course(db, await factories.user(db, admin), published.id)
    b_admin = await factories.campus(db)
    with pytest.raises(NotFound):
        await courses.managed_course(db, b_admin, published.id)
    with pytest.raises(NotFound):
        await courses.managed_course(db, teacher, uuid.uuid4())


async def test_moving_modules_and_lessons_one_place(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher = await factories.user(db, admin, "instructor")
    tree = await factories.course(db, teacher, modules=2, lessons=3)
    m1, m2 = tree.modules
    l1, l2, l3 = tree.lessons[:3]
    moved = await ordering.move_lesson(db, teacher, l3.id, "up")
    assert moved.id == l3.id and moved.course_id == tree.id
    assert (await _titles(db, teacher, tree.id))[0] == ["Module 1", "Lesson 1.1", "Lesson 1.3", "Lesson 1.2"]
    await ordering.move_lesson(db, teacher, l1.id, "up")  # the first one up: nothing changes
    await ordering.move_lesson(db, teacher, l2.id, "down")  # the last one down: nothing changes
    await ordering.move_lesson(db, teacher, l1.id, "down")
    assert (await _titles(db, teacher, tree.id))[0] == ["Module 1", "Lesson 1.3", "Lesson 1.1", "Lesson 1.2"]
    assert (await ordering.move_module(db, teacher, m2.id, "up")).course_id == tree.id
    await ordering.move_module(db, teacher, m2.id, "up")
    assert [t[0] for t in await _titles(db, teacher, tree.id)] == ["Module 2", "Module 1"]
    await ordering.move_module(db, admin, m1.id, "up")  # a campus admin may too
    assert [t[0] for t in await _titles(db, teacher, tree.id)] == ["Module 1", "Module 2"]
    # the other module's lessons did not move
    assert (await _titles(db, teacher, tree.id))[1] == ["Module 2", "Lesson 2.1", "Lesson 2.2", "Lesson 2.3"]


async def test_moving_refuses_bad_input_strangers_and_other_campuses(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher = await factories.user(db, admin, "instructor")
    tree = await factories.course(db, teacher, modules=2, lessons=2)
    module, lesson = tree.modules[1], tree.lessons[1]
    for direction in ("", "sideways", "UP"):
        with pytest.raises(Invalid) as refused:
            await ordering.move_lesson(db, teacher, lesson.id, direction)
        assert (refused.value.field, refused.value.code) == ("direction", "outline.direction_unknown")
    with pytest.raises(Invalid):
        await ordering.move_module(db, teacher, module.id, "left")
    learner = await factories.user(db, admin)
    await factories.enrolment(db, learner, tree)
    with pytest.raises(Forbidden):
        await ordering.move_module(db, learner, module.id, "up")
    with pytest.raises(Forbidden):
        await ordering.move_lesson(db, await factories.user(db, admin, "instructor"), lesson.id, "up")
    b_admin = await factories.campus(db)
    with pytest.raises(NotFound):
        await ordering.move_module(db, b_admin, module.id, "up")
    with pytest.raises(NotFound):
        await ordering.move_lesson(db, b_admin, lesson.id, "up")
    with pytest.raises(NotFound):
        await ordering.move_lesson(db, teacher, uuid.uuid4(), "up")
    assert [t[0] for t in await _titles(db, teacher, tree.id)] == ["Module 1", "Module 2"]


async def test_a_refused_lesson_edit_changes_nothing(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher = await factories.user(db, admin, "instructor")
    tree = await factories.course(db, teacher)
    made = await factories.quiz(db, teacher, tree)
    assert made.lesson is not None
    with pytest.raises(Invalid):  # a quiz lesson without its quiz
        await courses.update_lesson(db, teacher, made.lesson.id, LessonPatch(title="Renamed", quiz_id=None), "*")
    with pytest.raises(Invalid):  # a video of no course
        await courses.update_lesson(db, teacher, tree.lessons[0].id, LessonPatch(title="Renamed", video_id=uuid.uuid4()), "*")
    # nothing changed, nothing left for the session to flush (a page renders after the refusal)
    assert not db.dirty
    lesson = await courses.get_lesson(db, teacher, made.lesson.id)
    assert (lesson.title, lesson.quiz_id, lesson.version) == ("Quiz", made.id, 1)
    assert (await courses.get_lesson(db, teacher, tree.lessons[0].id)).title == "Lesson 1.1"
