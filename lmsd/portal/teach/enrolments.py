"""A course's enrolments: who is enrolled (a page at a time), enrolling someone by e-mail,
withdrawing and reactivating."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from lmsd.courses import service as courses
from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.policy import Identity
from lmsd.portal import forms
from lmsd.portal.forms import FormErrors
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page, PortalPages
from lmsd.portal.teach.common import fill, notice_of, teacher
from lmsd.server.session import DbSession

PER_PAGE = 50
STAFF_STATUSES = ("active", "withdrawn")


def _statuses() -> dict[str, str]:
    return {"active": _("Active"), "completed": _("Completed"), "withdrawn": _("Withdrawn")}


class EnrolmentPages(PortalPages):
    path = "/"

    @get("/teach/courses/{course_id:uuid}/enrolments")
    async def enrolments(
        self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID,
        cursor: str | None = None, notice: str | None = None,
    ) -> Response[Any]:
        page, who = await teacher(request, db)
        return await _enrolments_page(page, db, who, course_id, cursor=cursor, notice=notice_of(notice))

    @post("/teach/courses/{course_id:uuid}/enrolments")
    async def enrol(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        email = forms.text(form, "email").lower()
        errors = FormErrors()
        try:
            await enrolments.enrol_by_email(db, who, course_id, email)
        except (Invalid, NotFound, Conflict) as exc:
            if not errors.show(exc, ("email",), default="email" if isinstance(exc, Conflict) else None):
                raise  # not about the address: no such course (404)
        else:
            return page.redirect(f"/teach/courses/{course_id}/enrolments?notice=enrolled")
        return await _enrolments_page(page, db, who, course_id, status=422, errors=errors, email=email)

    @post("/teach/enrolments/{enrolment_id:uuid}/status")
    async def enrolment_status(self, request: Request[Any, Any, State], db: DbSession, enrolment_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        status = forms.text(form, "status")
        if status not in STAFF_STATUSES:
            raise Invalid("status must be active or withdrawn", field="status")
        changed = await enrolments.set_status(db, who, enrolment_id, status, staff=True)
        return page.redirect(f"/teach/courses/{changed.course_id}/enrolments?notice=enrolment-changed")


async def _enrolments_page(
    page: Page,
    db: DbSession,
    who: Identity,
    course_id: uuid.UUID,
    *,
    cursor: str | None = None,
    status: int = 200,
    errors: FormErrors | None = None,
    email: str = "",
    notice: str = "",
) -> Response[Any]:
    course = await courses.managed_course(db, who, course_id)
    found, people = await enrolments.list_with_people(db, who, course_id, cursor, PER_PAGE)
    return page.render(
        "teach/enrolments.html", status=status, title=fill(_("Enrolments: %(course)s"), course=course.title),
        course=course, items=found.items, people=people, next_cursor=found.next_cursor, first_page=not cursor,
        errors=errors or FormErrors(), email=email, notice=notice, statuses=_statuses(), section="enrolments",
    )
