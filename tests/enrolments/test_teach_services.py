"""What the instructor's pages ask of the enrolments service: enrolling by e-mail, counts per
course, a page of enrolments with the people named, and a staff status change. Bad input is
refused with the field and a code; another campus's people and courses are not found."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict, Forbidden, Invalid, NotFound
from tests import factories


async def test_enrol_by_email_in_any_case(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher, learner = await factories.user(db, admin, "instructor"), await factories.user(db, admin)
    tree = await factories.course(db, teacher, self_enrol=False)
    made = await enrolments.enrol_by_email(db, teacher, tree.id, f"  {learner.email.upper()} ")
    assert (made.user_id, made.course_id, made.status) == (learner.user_id, tree.id, "active")
    with pytest.raises(Conflict):
        await enrolments.enrol_by_email(db, teacher, tree.id, learner.email)
    # withdrawn, then enrolled again by e-mail: the same enrolment, active
    await enrolments.set_status(db, teacher, made.id, "withdrawn", staff=True)
    again = await enrolments.enrol_by_email(db, admin, tree.id, learner.email)
    assert (again.id, again.status) == (made.id, "active")


async def test_enrol_by_email_refuses_bad_input_strangers_and_other_campuses(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher, learner = await factories.user(db, admin, "instructor"), await factories.user(db, admin)
    tree = await factories.course(db, teacher)
    for bad in ("", "   ", "not-an-address"):
        with pytest.raises(Invalid) as refused:
            await enrolments.enrol_by_email(db, teacher, tree.id, bad)
        assert (refused.value.field, refused.value.code) == ("email", "enrolment.email_required")
    b_admin = await factories.campus(db)
    b_learner = await factories.user(db, b_admin)
    for unknown in ("nobody@nowhere.example", b_learner.email):  # campus B's people are nobody here
        with pytest.raises(NotFound) as missing:
            await enrolments.enrol_by_email(db, teacher, tree.id, unknown)
        assert (missing.value.field, missing.value.code) == ("email", "enrolment.unknown_email")
    with pytest.raises(Forbidden):  # a learner, another instructor: not theirs to manage
        await enrolments.enrol_by_email(db, learner, tree.id, learner.email)
    with pytest.raises(Forbidden):
        await enrolments.enrol_by_email(db, await factories.user(db, admin, "instructor"), tree.id, learner.email)
    with pytest.raises(NotFound) as no_course:  # campus B's admin does not see campus A's course
        await enrolments.enrol_by_email(db, b_admin, tree.id, b_learner.email)
    assert no_course.value.field is None
    assert (await enrolments.list_enrolments(db, teacher, tree.id, None, 50)).items == []


async def test_counts_per_course_for_those_who_may_list(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher, other = await factories.user(db, admin, "instructor"), await factories.user(db, admin, "instructor")
    mine, theirs, empty = (
        await factories.course(db, teacher), await factories.course(db, other), await factories.course(db, teacher)
    )
    people = [await factories.user(db, admin) for _ in range(3)]
    for person in people:
        await factories.enrolment(db, person, mine)
    gone = await factories.enrolment(db, people[0], theirs)
    await factories.enrolment(db, people[1], theirs)
    await enrolments.set_status(db, people[0], gone.id, "withdrawn")  # withdrawn ones do not count
    ids = [mine.id, theirs.id, empty.id, uuid.uuid4()]
    assert await enrolments.counts(db, teacher, ids) == {mine.id: 3}
    assert await enrolments.counts(db, other, ids) == {theirs.id: 1}
    assert await enrolments.counts(db, admin, ids) == {mine.id: 3, theirs.id: 1}
    assert await enrolments.counts(db, people[2], ids) == {}  # a learner lists nobody's
    assert await enrolments.counts(db, admin, []) == {}
    b_admin = await factories.campus(db)
    assert await enrolments.counts(db, b_admin, ids) == {}  # campus A's courses are not campus B's


async def test_a_page_of_enrolments_with_the_people(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher = await factories.user(db, admin, "instructor")
    tree = await factories.course(db, teacher)
    people = [await factories.user(db, admin) for _ in range(3)]
    for person in people:
        await factories.enrolment(db, person, tree)
    first, named = await enrolments.list_with_people(db, teacher, tree.id, None, 2)
    assert len(first.items) == 2 and first.next_cursor is not None
    assert {e.user_id for e in first.items} == set(named)
    rest, more = await enrolments.list_with_people(db, teacher, tree.id, first.next_cursor, 2)
    assert len(rest.items) == 1 and rest.next_cursor is None
    assert {u.email for u in [*named.values(), *more.values()]} == {p.email for p in people}
    empty = await factories.course(db, teacher)
    nobody, no_people = await enrolments.list_with_people(db, teacher, empty.id, None, 2)
    assert nobody.items == [] and no_people == {}
    with pytest.raises(Forbidden):
        await enrolments.list_with_people(db, people[0], tree.id, None, 2)
    with pytest.raises(NotFound):
        await enrolments.list_with_people(db, await factories.campus(db), tree.id, None, 2)


async def test_a_staff_status_change_needs_the_right_to_manage(db: AsyncSession) -> None:
    admin = await factories.platform_admin(db)
    teacher = await factories.user(db, admin, "instructor")
    tree = await factories.course(db, teacher)
    other_teacher = await factories.user(db, admin, "instructor")
    own = await factories.enrolment(db, other_teacher, tree)  # an instructor learning in a colleague's course
    # withdrawing oneself is a learner's right; as staff (the teach pages) it needs enrolment.manage
    with pytest.raises(Forbidden):
        await enrolments.set_status(db, other_teacher, own.id, "withdrawn", staff=True)
    assert (await enrolments.set_status(db, other_teacher, own.id, "withdrawn")).status == "withdrawn"
    assert (await enrolments.set_status(db, teacher, own.id, "active", staff=True)).status == "active"
    with pytest.raises(NotFound):
        await enrolments.set_status(db, await factories.campus(db), own.id, "withdrawn", staff=True)
