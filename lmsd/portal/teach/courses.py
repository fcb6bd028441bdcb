"""The instructor's courses: the list, a new course, a course's settings and its publication.

The course page also shows the outline (:mod:`lmsd.portal.teach.outline` posts to it and
re-renders it with :func:`course_page`).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict, State

from lmsd import policy
from lmsd.courses import service as courses
from lmsd.courses.schemas import (
    MAX_CODE,
    MAX_SUMMARY,
    MAX_TAG,
    MAX_TAGS,
    MAX_TITLE,
    Code,
    CourseIn,
    CoursePatch,
    Lang,
)
from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict, Invalid, PreconditionFailed, PreconditionRequired
from lmsd.media import service as media
from lmsd.policy import Identity
from lmsd.portal import forms, i18n
from lmsd.portal.forms import FormErrors
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page, PortalPages
from lmsd.portal.teach.common import (
    course_statuses,
    fill,
    language_options,
    lesson_kinds,
    lesson_videos,
    notice_of,
    teacher,
    too_long,
)
from lmsd.quizzes import service as quizzes
from lmsd.server.session import DbSession

COURSE_FIELDS = ("code", "title", "summary", "language", "tags")


def _values(form: FormMultiDict) -> dict[str, Any]:
    return {
        "code": forms.text(form, "code"),
        "title": forms.text(form, "title"),
        "summary": forms.text(form, "summary"),
        "language": forms.text(form, "language"),
        "tags": forms.text(form, "tags"),
        "self_enrol": forms.flag(form, "self_enrol"),
        "version": forms.text(form, "version"),
    }


def _tags(text: str) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def _check(values: dict[str, Any], *, new: bool) -> FormErrors:
    """The messages for a course's settings, by the limits of :mod:`lmsd.courses.schemas`."""
    errors = FormErrors()
    if new:
        if not values["code"]:
            errors["code"] = _("Enter a course code.")
        elif not forms.valid(values["code"], Code):
            errors["code"] = fill(
                _("A course code has at most %(limit)s letters, digits, dots, hyphens and underscores, "
                  "and starts with a letter or digit."),
                limit=i18n.fmt_number(MAX_CODE),
            )
    if not values["title"]:
        errors["title"] = _("Enter a title.")
    elif len(values["title"]) > MAX_TITLE:
        errors["title"] = too_long(MAX_TITLE)
    if len(values["summary"]) > MAX_SUMMARY:
        errors["summary"] = fill(
            _("The summary is too long: at most %(limit)s characters."), limit=i18n.fmt_number(MAX_SUMMARY)
        )
    if not forms.valid(values["language"], Lang):
        errors["language"] = _("Choose a language from the list.")
    tags = _tags(values["tags"])
    if len(tags) > MAX_TAGS:
        errors["tags"] = fill(_("Give at most %(limit)s tags."), limit=i18n.fmt_number(MAX_TAGS))
    elif any(len(t) > MAX_TAG for t in tags):
        errors["tags"] = fill(_("A tag has at most %(limit)s characters."), limit=i18n.fmt_number(MAX_TAG))
    return errors


class CoursePages(PortalPages):
    path = "/"

    @get("/teach")
    async def index(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page, who = await teacher(request, db)
        _enrolled, teaching = await courses.my_courses(db, who)
        counts = await enrolments.counts(db, who, [c.id for c in teaching])
        return page.render(
            "teach/index.html", title=_("Teaching"), courses=teaching, counts=counts, statuses=course_statuses(),
        )

    @get("/teach/courses/new")
    async def new_course(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page, who = await teacher(request, db)
        policy.require(who, "course.create")
        values = {"code": "", "title": "", "summary": "", "language": i18n.supported(page.lang) or "en", "tags": "",
                  "self_enrol": False, "version": ""}
        return _new_course_page(page, values, FormErrors())

    @post("/teach/courses/new")
    async def create_course(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        values = _values(form)
        errors = _check(values, new=True)
        data = {
            "code": values["code"], "title": values["title"], "summary": values["summary"],
            "language": values["language"], "tags": _tags(values["tags"]), "self_enrol": values["self_enrol"],
        }
        course_in = None if errors else forms.convert(data, CourseIn, errors)
        if course_in is not None:
            try:
                course = await courses.create_course(db, who, course_in)
            except Conflict as exc:  # the code is taken
                errors.show(exc, COURSE_FIELDS, default="code")
            else:
                return page.redirect(f"/teach/courses/{course.id}?notice=created")
        return _new_course_page(page, values, errors, 422)

    @get("/teach/courses/{course_id:uuid}")
    async def course(
        self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID, notice: str | None = None
    ) -> Response[Any]:
        page, who = await teacher(request, db)
        return await course_page(page, db, who, course_id, notice=notice_of(notice))

    @post("/teach/courses/{course_id:uuid}")
    async def update_course(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        course = await courses.managed_course(db, who, course_id)
        values = {**_values(form), "code": course.code}
        errors = _check(values, new=False)
        if errors:
            return await course_page(page, db, who, course_id, status=422, errors=errors, values=values)
        patch = CoursePatch(
            title=values["title"], summary=values["summary"], language=values["language"], tags=_tags(values["tags"]),
            self_enrol=values["self_enrol"],
        )
        try:
            await courses.update_course(db, who, course_id, patch, values["version"] or None)
        except (PreconditionFailed, PreconditionRequired):
            return await course_page(
                page, db, who, course_id, status=409, values=values,
                message=_("Someone changed this course after you opened this page, so your changes were not saved. "
                          "Reload the page to see the course as it is now, then make your changes again."),
            )
        return page.redirect(f"/teach/courses/{course_id}?notice=saved")

    @post("/teach/courses/{course_id:uuid}/status")
    async def set_course_status(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        status = forms.text(form, "status")
        if status not in ("published", "draft"):
            raise Invalid("status must be published or draft", field="status")
        patch = CoursePatch(status="published" if status == "published" else "draft")
        try:
            await courses.update_course(db, who, course_id, patch, forms.text(form, "version") or None)
        except (PreconditionFailed, PreconditionRequired):
            return await course_page(
                page, db, who, course_id, status=409,
                message=_("Someone changed this course after you opened this page. "
                          "Check the course below, then publish or unpublish it again."),
            )
        return page.redirect(f"/teach/courses/{course_id}?notice={'published' if status == 'published' else 'unpublished'}")


def _new_course_page(page: Page, values: dict[str, Any], errors: FormErrors, status: int = 200) -> Response[Any]:
    return page.render(
        "teach/new_course.html", status=status, title=_("New course"), values=values, errors=errors,
        language_options=language_options(values["language"]),
    )


async def course_page(
    page: Page,
    db: DbSession,
    who: Identity,
    course_id: uuid.UUID,
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
    lesson: dict[str, str] | None = None,
    module_title: str = "",
    renames: dict[str, str] | None = None,
    notice: str = "",
    message: str = "",
) -> Response[Any]:
    """The course's settings and outline; a form of it re-rendered with what was typed."""
    course = await courses.managed_course(db, who, course_id)
    _course, _people, modules, lessons = await courses.outline(db, who, course_id)
    videos = lesson_videos(await media.course_videos(db, who, course_id))
    course_quizzes = await quizzes.course_quizzes(db, who, course_id)
    values = values or {
        "code": course.code, "title": course.title, "summary": course.summary, "language": course.language,
        "tags": ", ".join(course.tags), "self_enrol": course.self_enrol, "version": str(course.version),
    }
    return page.render(
        "teach/course.html", status=status, title=course.title, course=course, values=values,
        errors=errors or FormErrors(), modules=modules, lessons=lessons, videos=videos, quizzes=course_quizzes,
        lesson=lesson or {"module": "", "title": "", "kind": "text", "video": "", "quiz": ""},
        module_title=module_title, renames=renames or {}, notice=notice, message=message,
        language_options=language_options(values["language"]), statuses=course_statuses(), kinds=lesson_kinds(),
        section="course",
    )
