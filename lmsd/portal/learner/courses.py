"""The learner's course pages: the catalog, a course, enrolment, my courses."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import State

from lmsd import policy
from lmsd.courses import service as courses
from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict
from lmsd.portal.i18n import gettext as _
from lmsd.portal.learner.common import (
    continue_at,
    fraction,
    kind_name,
    language_name,
    notice,
    outline_of,
    standing_of,
)
from lmsd.portal.pages import Page, PortalPages, portal
from lmsd.server.session import DbSession

CATALOG_PAGE = 12


class CoursePages(PortalPages):
    path = "/"

    @get("/catalog")
    async def catalog(
        self, request: Request[Any, Any, State], db: DbSession,
        q: str = "", language: str = "", tag: str = "", cursor: str = "",
    ) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        who = page.who
        q, language, tag = q.strip()[:100], language.strip()[:16], tag.strip()[:64]
        found = await courses.catalog(
            db, who, cursor=cursor or None, limit=CATALOG_PAGE, q=q or None, language=language or None, tag=tag or None
        )
        # the filters' choices: facts of the campus's published courses, which every member may read
        languages, tags = await courses.catalog_facets(db, who)
        enrolled, _teaching = await courses.my_courses(db, who)
        query = {k: v for k, v in (("q", q), ("language", language), ("tag", tag)) if v}
        first_url = "/catalog" + (f"?{urlencode(query)}" if query else "")
        next_url = "/catalog?" + urlencode({**query, "cursor": found.next_cursor}) if found.next_cursor else ""
        return page.render(
            "learner/catalog.html", title=_("Catalog"), courses=found.items, next_url=next_url, first_url=first_url, q=q,
            language=language, tag=tag, first_page=not cursor,
            language_options=[("", _("Any language"))] + [(code, language_name(code)) for code in languages],
            tag_options=[("", _("Any topic"))] + [(t, t) for t in tags],
            enrolled={c.id for c in enrolled}, language_name=language_name,
        )

    @get("/courses/{course_id:uuid}")
    async def course(
        self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID, notice: str = ""
    ) -> Response[Any]:
        page = await portal(request, db)
        return await _course_page(page, db, course_id, _notice(notice))

    @post("/courses/{course_id:uuid}/enrol", status_code=303)
    async def enrol(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        page.check_csrf(str((await request.form()).get("csrf_token", "")))
        try:
            await enrolments.enrol_self(db, page.who, course_id)
        except Conflict:
            standing = await standing_of(db, page.who, course_id)
            if standing.enrolled:
                return page.redirect(f"/courses/{course_id}?notice=already")
            return await _course_page(
                page, db, course_id, status=409, error=_("This course is not open for self-enrolment.")
            )
        return page.redirect(f"/courses/{course_id}?notice=enrolled")

    @get("/my")
    async def my(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        enrolled, teaching = await courses.my_courses(db, page.who)
        rows = []
        for course in enrolled:
            outline = await outline_of(db, page.who, course.id)
            standing = await standing_of(db, page.who, course.id)
            share = fraction(outline, standing)
            completed = share >= 1.0 or (standing.progress is not None and standing.progress.completed_at is not None)
            rows.append({
                "course": course, "standing": standing, "fraction": 1.0 if completed else share,
                "completed": completed, "next": continue_at(outline, standing),
                "last_activity": standing.progress.last_activity_at if standing.progress else None,
            })
        return page.render(
            "learner/my.html", title=_("My courses"), rows=rows, teaching=teaching,
            staff=page.who.role in ("instructor", "admin"),
        )


_notice = notice  # the handler's query parameter is called notice too


async def _course_page(
    page: Page, db: DbSession, course_id: uuid.UUID, message: str = "", status: int = 200, error: str = ""
) -> Response[Any]:
    assert page.who is not None
    outline = await outline_of(db, page.who, course_id)
    standing = await standing_of(db, page.who, course_id)
    staff = policy.allowed(page.who, "course.update", outline.rel)
    can_enrol = (
        not standing.enrolled and outline.course.status == "published" and outline.course.self_enrol
        and policy.allowed(page.who, "enrolment.self", outline.rel)
    )
    return page.render(
        "learner/course.html", status=status, title=outline.course.title, outline=outline, standing=standing,
        staff=staff, can_read=standing.enrolled or policy.allowed(page.who, "lesson.read", outline.rel),
        can_enrol=can_enrol, fraction=fraction(outline, standing), next_lesson=continue_at(outline, standing),
        notice=message, error=error, language_name=language_name, kind_name=kind_name,
        done_count=len([lesson for lesson in outline.ordered if lesson.id in standing.done]),
    )
