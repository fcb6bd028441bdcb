"""enrolments.own_enrolment: the actor's own enrolment in a course, whatever its status; nobody
else's, and nothing of another campus."""

from __future__ import annotations

import uuid

from lmsd.enrolments import service as enrolments
from tests.db import Database
from tests.services import campus_admin, campus_b, member, published_course, rolled_back


async def test_own_enrolment_follows_its_status(database: Database) -> None:
    async with rolled_back(database) as db:
        admin = await campus_admin(db, database)
        course = await published_course(db, await member(db, admin, "instructor"))
        learner, other = await member(db, admin), await member(db, admin)
        assert await enrolments.own_enrolment(db, learner, course) is None
        made = await enrolments.enrol_self(db, learner, course)
        found = await enrolments.own_enrolment(db, learner, course)
        assert found is not None and (found.id, found.status) == (made.id, "active")
        assert await enrolments.own_enrolment(db, other, course) is None  # not someone else's
        await enrolments.set_status(db, learner, made.id, "withdrawn")
        found = await enrolments.own_enrolment(db, learner, course)
        assert found is not None and found.status == "withdrawn"
        assert await enrolments.own_enrolment(db, learner, uuid.uuid4()) is None


async def test_another_campus_course_has_no_enrolment(database: Database) -> None:
    async with rolled_back(database) as db:
        admin = await campus_admin(db, database)
        course = await published_course(db, await member(db, admin, "instructor"))
        learner = await member(db, admin)
        await enrolments.enrol_self(db, learner, course)
        b = await campus_b(db)
        # campus B's learner, even under the same account id, does not see campus A's row
        assert await enrolments.own_enrolment(db, b.learner, course) is None
        forged = type(b.learner)(learner.user_id, b.learner.campus_id, learner.email, "x", "learner")
        assert await enrolments.own_enrolment(db, forged, course) is None
