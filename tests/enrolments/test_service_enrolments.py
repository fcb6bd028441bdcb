"""The enrolments service on the real database, each test in a rolled-back transaction: who may
enrol whom, one enrolment per person and course, withdrawal and re-enrolment, their events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict, Forbidden, Invalid, NotFound
from tests import factories as make


async def test_self_enrolment_only_in_open_published_courses(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    open_course = await make.course(db, teacher, modules=0)
    closed = await make.course(db, teacher, self_enrol=False, modules=0)
    draft = await make.course(db, teacher, published=False, modules=0)

    made = await enrolments.enrol_self(db, learner, open_course.id)
    assert made.status == "active" and made.user_id == learner.user_id and made.enrolled_by is None
    assert await enrolments.active_enrolment_id(db, learner, open_course.id) == made.id
    event = (await make.recorded(db, made.id))[0]
    assert event.WhichOneof("body") == "enrolment_created"
    assert event.enrolment_created.user_id == str(learner.user_id) and event.enrolment_created.enrolled_by == ""
    with pytest.raises(Conflict):
        await enrolments.enrol_self(db, learner, open_course.id)
    with pytest.raises(Conflict):
        await enrolments.enrol_self(db, learner, closed.id)
    with pytest.raises(NotFound):  # a draft is not there for a learner
        await enrolments.enrol_self(db, learner, draft.id)
    with pytest.raises(NotFound):
        await enrolments.enrol_self(db, learner, uuid.uuid4())
    assert await enrolments.active_enrolment_id(db, learner, closed.id) is None


async def test_staff_enrol_people_of_their_campus_with_valid_dates(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher, self_enrol=False, modules=0)
    now = datetime.now(UTC)
    with pytest.raises(Invalid):
        await enrolments.enrol_user(db, teacher, tree.id, learner.user_id, now, now - timedelta(days=1))
    with pytest.raises(NotFound):
        await enrolments.enrol_user(db, teacher, tree.id, uuid.uuid4(), None, None)
    other_learner = await make.user(db, await make.campus(db))
    with pytest.raises(NotFound):  # a person of another campus is nobody here
        await enrolments.enrol_user(db, teacher, tree.id, other_learner.user_id, None, None)
    made = await enrolments.enrol_user(db, teacher, tree.id, learner.user_id, now, now + timedelta(days=30))
    assert made.enrolled_by == teacher.user_id and made.ends_at is not None
    assert (await make.recorded(db, made.id))[0].enrolment_created.enrolled_by == str(teacher.user_id)
    # a learner may not enrol someone else, nor may an instructor who does not teach the course
    someone = await make.user(db, admin)
    with pytest.raises(Forbidden):
        await enrolments.enrol_user(db, learner, tree.id, someone.user_id, None, None)
    with pytest.raises(Forbidden):
        await enrolments.enrol_user(db, await make.user(db, admin, "instructor"), tree.id, someone.user_id, None, None)


async def test_withdrawal_and_coming_back_keep_one_enrolment(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher, modules=0)
    first = await make.enrolment(db, learner, tree)
    other = await make.user(db, admin)
    with pytest.raises(Forbidden):  # one may withdraw oneself only
        await enrolments.set_status(db, other, first.id, "withdrawn")
    assert (await enrolments.set_status(db, learner, first.id, "withdrawn")).status == "withdrawn"
    await enrolments.set_status(db, learner, first.id, "withdrawn")  # again: no second event
    assert await enrolments.active_enrolment_id(db, learner, tree.id) is None
    with pytest.raises(Forbidden):  # a learner cannot complete their own enrolment
        await enrolments.set_status(db, learner, first.id, "completed")
    again = await enrolments.enrol_self(db, learner, tree.id)
    assert again.id == first.id and again.status == "active"
    assert make.kinds(await make.recorded(db, first.id)) == ["enrolment_created", "enrolment_withdrawn", "enrolment_created"]
    assert (await enrolments.set_status(db, teacher, first.id, "completed")).status == "completed"
    with pytest.raises(NotFound):
        await enrolments.set_status(db, teacher, uuid.uuid4(), "withdrawn")
    with pytest.raises(NotFound):  # another campus's admin does not find it
        await enrolments.set_status(db, await make.campus(db), first.id, "withdrawn")


async def test_the_list_is_for_staff_and_pages(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    tree = await make.course(db, teacher, modules=0)
    learners = [await make.user(db, admin) for _ in range(3)]
    made = {(await make.enrolment(db, who, tree)).id for who in learners}
    page = await enrolments.list_enrolments(db, teacher, tree.id, None, 2)
    rest = await enrolments.list_enrolments(db, teacher, tree.id, page.next_cursor, 2)
    assert len(page.items) == 2 and rest.next_cursor is None
    assert {e.id for e in page.items} | {e.id for e in rest.items} == made
    with pytest.raises(Forbidden):
        await enrolments.list_enrolments(db, learners[0], tree.id, None, None)
    with pytest.raises(Invalid):
        await enrolments.list_enrolments(db, teacher, tree.id, "not a cursor", None)
