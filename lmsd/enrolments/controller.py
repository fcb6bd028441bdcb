"""HTTP for enrolments."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, patch, post
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination
from lmsd.db.models import Enrolment
from lmsd.enrolments import service
from lmsd.enrolments.schemas import EnrolIn, EnrolmentOut, EnrolmentPage, EnrolmentPatch
from lmsd.policy import Identity


def enrolment_out(e: Enrolment) -> EnrolmentOut:
    return EnrolmentOut(e.id, e.course_id, e.user_id, e.status, e.enrolled_by, e.starts_at, e.ends_at, e.created_at)


class EnrolmentController(Controller):
    path = "/api/v1"
    tags = ["enrolments"]

    @post("/courses/{course_id:uuid}/enrol")
    async def enrol_self(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID) -> Response[EnrolmentOut]:
        """Enrol yourself in a published course that is open for self-enrolment."""
        return Response(enrolment_out(await service.enrol_self(db, identity, course_id)), status_code=201)

    @post("/courses/{course_id:uuid}/enrolments")
    async def enrol_user(
        self, db: AsyncSession, identity: Identity, course_id: uuid.UUID, data: EnrolIn
    ) -> Response[EnrolmentOut]:
        """Enrol someone of this campus (course instructors and admins)."""
        e = await service.enrol_user(db, identity, course_id, data.user_id, data.starts_at, data.ends_at)
        return Response(enrolment_out(e), status_code=201)

    @get("/courses/{course_id:uuid}/enrolments")
    async def list_enrolments(
        self,
        db: AsyncSession,
        identity: Identity,
        course_id: uuid.UUID,
        cursor: pagination.Cursor = None,
        limit: pagination.Limit = None,
    ) -> EnrolmentPage:
        page = await service.list_enrolments(db, identity, course_id, cursor, limit)
        return EnrolmentPage([enrolment_out(e) for e in page.items], page.next_cursor)

    @patch("/enrolments/{enrolment_id:uuid}")
    async def set_status(
        self, db: AsyncSession, identity: Identity, enrolment_id: uuid.UUID, data: EnrolmentPatch
    ) -> EnrolmentOut:
        """Change status: learners may withdraw themselves; staff may set any status."""
        return enrolment_out(await service.set_status(db, identity, enrolment_id, data.status))
