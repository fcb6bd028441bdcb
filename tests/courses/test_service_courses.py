"""The courses service on the real database, each test in a rolled-back transaction: who sees
and edits what, versions, ordering of modules and lessons, and bad input."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.courses import service as courses
from lmsd.courses.schemas import CourseIn, LessonIn, LessonPatch, ModuleIn
from lmsd.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, PreconditionRequired
from tests import factories as make


async def test_create_is_a_draft_taught_by_its_author_and_codes_are_unique_per_campus(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    made = await courses.create_course(db, teacher, CourseIn(code="MATH-101", title="Algebra", tags=["a", "b", "a"]))
    assert made.status == "draft" and made.version == 1 and made.tags == ["a", "b"]
    _, instructors, modules, _ = await courses.outline(db, teacher, made.id)
    assert [u.id for u in instructors] == [teacher.user_id] and modules == []

    with pytest.raises(Conflict):
        async with db.begin_nested():  # a failed statement: back to this savepoint, not further
            await courses.create_course(db, admin, CourseIn(code="MATH-101", title="Again"))
    assert (await courses.load_course(db, teacher, made.id))[0].code == "MATH-101"
    # the same code on another campus is another course
    other = await make.campus(db)
    assert (await courses.create_course(db, other, CourseIn(code="MATH-101", title="Theirs"))).id != made.id
    # learners may not create courses
    learner = await make.user(db, admin)
    with pytest.raises(Forbidden):
        await courses.create_course(db, learner, CourseIn(code="NOPE", title="No"))


async def test_drafts_are_invisible_to_learners_and_other_campuses_see_nothing(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    draft = await make.course(db, teacher, published=False)
    learner = await make.user(db, admin)
    with pytest.raises(NotFound):
        await courses.load_course(db, learner, draft.id)
    course, rel = await courses.load_course(db, teacher, draft.id)
    assert course.id == draft.id and rel.course_instructor and not rel.enrolled
    other_admin = await make.campus(db)
    with pytest.raises(NotFound):
        await courses.load_course(db, other_admin, draft.id)
    published = await make.course(db, teacher)
    with pytest.raises(NotFound):  # published, but of another campus
        await courses.outline(db, other_admin, published.id)
    with pytest.raises(NotFound):
        await courses.load_course(db, learner, uuid.uuid4())


async def test_catalog_filters_statuses_and_pages(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    colleague = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tag = f"t{uuid.uuid4().hex[:6]}"
    made = [await make.course(db, teacher, title=f"Topology {tag} {n}", tags=[tag], language="fr", modules=0) for n in range(3)]
    mine = await make.course(db, teacher, title=f"Draft {tag}", published=False, tags=[tag], modules=0)
    theirs = await make.course(db, colleague, title=f"Draft {tag} 2", published=False, tags=[tag], modules=0)

    page = await courses.catalog(db, learner, tag=tag, limit=2)
    assert len(page.items) == 2 and page.next_cursor
    rest = await courses.catalog(db, learner, tag=tag, limit=2, cursor=page.next_cursor)
    assert {c.id for c in page.items} | {c.id for c in rest.items} == {c.id for c in made} and rest.next_cursor is None
    assert [c.id for c in (await courses.catalog(db, learner, q=f"TOPOLOGY {tag} 1")).items] == [made[1].id]
    assert (await courses.catalog(db, learner, tag=tag, language="en")).items == []
    # LIKE's wildcards are plain text in a search
    assert (await courses.catalog(db, learner, q="%", tag=tag)).items == []
    assert (await courses.catalog(db, learner, q="_", tag=tag)).items == []

    # drafts: a learner's list is empty, an instructor sees their own, an admin every one
    assert {c.id for c in (await courses.catalog(db, teacher, status="draft", tag=tag)).items} == {mine.id}
    assert {c.id for c in (await courses.catalog(db, admin, status="draft", tag=tag)).items} == {mine.id, theirs.id}
    assert (await courses.catalog(db, learner, status="draft", tag=tag)).items == []
    with pytest.raises(Invalid):
        await courses.catalog(db, learner, status="deleted")
    # another campus's catalog has none of them
    assert (await courses.catalog(db, await make.campus(db), tag=tag)).items == []


async def test_updates_need_the_current_version_and_record_events(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    tree = await make.course(db, teacher, published=False, modules=0)
    with pytest.raises(PreconditionRequired):
        await courses.update_course(db, teacher, tree.id, make.patch(title="New"), None)
    with pytest.raises(PreconditionFailed):
        await courses.update_course(db, teacher, tree.id, make.patch(title="New"), '"99"')
    with pytest.raises(Invalid):
        await courses.update_course(db, teacher, tree.id, make.patch(), "*")
    updated = await courses.update_course(db, teacher, tree.id, make.patch(title="New", tags=["x", "x"]), 'W/"1"')
    assert updated.title == "New" and updated.tags == ["x"] and updated.version == 2
    published = await courses.update_course(db, teacher, tree.id, make.patch(status="published"), "*")
    assert published.status == "published" and published.version == 3
    assert make.kinds(await make.recorded(db, tree.id)) == ["course_updated", "course_published"]

    learner = await make.user(db, admin)
    with pytest.raises(Forbidden):
        await courses.update_course(db, learner, tree.id, make.patch(title="Mine"), "*")
    stranger = await make.user(db, admin, "instructor")  # an instructor who does not teach it
    with pytest.raises(Forbidden):
        await courses.update_course(db, stranger, tree.id, make.patch(title="Mine"), "*")
    await courses.add_instructor(db, teacher, tree.id, stranger.user_id)
    await courses.add_instructor(db, teacher, tree.id, stranger.user_id)  # twice is once
    assert (await courses.update_course(db, stranger, tree.id, make.patch(title="Ours"), "*")).title == "Ours"
    _, instructors, _, _ = await courses.outline(db, teacher, tree.id)
    assert {u.id for u in instructors} == {teacher.user_id, stranger.user_id}


async def test_instructors_must_be_staff_of_the_same_campus(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    tree = await make.course(db, teacher, modules=0)
    learner = await make.user(db, admin)
    with pytest.raises(Invalid):
        await courses.add_instructor(db, teacher, tree.id, learner.user_id)
    other = await make.user(db, await make.campus(db), "instructor")
    with pytest.raises(NotFound):
        await courses.add_instructor(db, teacher, tree.id, other.user_id)


async def test_modules_and_lessons_keep_their_order(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    tree = await make.course(db, teacher, modules=2, lessons=2)
    first, second = tree.modules
    inserted = await courses.create_module(db, teacher, tree.id, ModuleIn(title="Intro", position=0))
    _, _, modules, lessons = await courses.outline(db, teacher, tree.id)
    assert [m.id for m in modules] == [inserted.id, first.id, second.id]
    assert [lesson.title for lesson in lessons[first.id]] == ["Lesson 1.1", "Lesson 1.2"]

    await courses.reorder(db, teacher, tree.id, [second.id, first.id, inserted.id], module_id=None)
    a, b = lessons[first.id]
    await courses.reorder(db, teacher, tree.id, [b.id, a.id], module_id=first.id)
    _, _, modules, lessons = await courses.outline(db, teacher, tree.id)
    assert [m.id for m in modules] == [second.id, first.id, inserted.id]
    assert [lesson.id for lesson in lessons[first.id]] == [b.id, a.id]
    for wrong in ([second.id, first.id], [second.id, first.id, inserted.id, inserted.id], [second.id, first.id, uuid.uuid4()]):
        with pytest.raises(Invalid):
            await courses.reorder(db, teacher, tree.id, wrong, module_id=None)

    with pytest.raises(PreconditionFailed):
        await courses.rename_module(db, teacher, inserted.id, "Welcome", '"7"')
    assert (await courses.rename_module(db, teacher, inserted.id, "Welcome", str(inserted.version))).title == "Welcome"
    await courses.delete_module(db, teacher, inserted.id)
    with pytest.raises(NotFound):
        await courses.load_module(db, teacher, inserted.id)
    learner = await make.user(db, admin)
    with pytest.raises(Forbidden):
        await courses.delete_module(db, learner, first.id)


async def test_lessons_check_their_kind_and_are_read_by_enrolled_learners_only(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    tree = await make.course(db, teacher, lessons=1)
    module = tree.modules[0]
    with pytest.raises(Invalid):
        await courses.create_lesson(db, teacher, module.id, LessonIn(title="Film", kind="video"))
    with pytest.raises(Invalid):
        await courses.create_lesson(db, teacher, module.id, LessonIn(title="Test", kind="quiz"))
    with pytest.raises(Invalid):  # a video id that names no video of this course
        await courses.create_lesson(db, teacher, module.id, LessonIn(title="Film", kind="video", video_id=uuid.uuid4()))
    lesson = tree.lessons[0]
    with pytest.raises(PreconditionRequired):
        await courses.update_lesson(db, teacher, lesson.id, LessonPatch(title="Renamed"), None)
    quiz = await make.quiz(db, teacher, tree)
    assert quiz.lesson is not None
    with pytest.raises(Invalid):  # a quiz lesson without its quiz
        async with db.begin_nested():  # the refused change is not left in the session
            await courses.update_lesson(db, teacher, quiz.lesson.id, LessonPatch(quiz_id=None), "*")
    assert (await courses.get_lesson(db, teacher, quiz.lesson.id)).quiz_id == quiz.id
    renamed = await courses.update_lesson(db, teacher, lesson.id, LessonPatch(title="Renamed"), str(lesson.version))
    assert renamed.title == "Renamed"

    learner = await make.user(db, admin)
    with pytest.raises(Forbidden):  # not enrolled
        await courses.get_lesson(db, learner, lesson.id)
    await make.enrolment(db, learner, tree)
    assert (await courses.get_lesson(db, learner, lesson.id)).title == "Renamed"
    enrolled, teaching = await courses.my_courses(db, learner)
    assert [c.id for c in enrolled] == [tree.id] and teaching == []
    assert [c.id for c in (await courses.my_courses(db, teacher))[1]] == [tree.id]
    with pytest.raises(NotFound):  # another campus's lesson id
        await courses.get_lesson(db, await make.campus(db), lesson.id)
