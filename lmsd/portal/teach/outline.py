"""A course's outline: modules (add, rename, delete, move) and lessons (add, move, edit)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from lmsd import policy
from lmsd.courses import ordering
from lmsd.courses import service as courses
from lmsd.courses.schemas import MAX_BODY, MAX_TITLE, LessonIn, LessonPatch, ModuleIn
from lmsd.errors import Invalid, PreconditionFailed, PreconditionRequired
from lmsd.media import service as media
from lmsd.policy import Identity
from lmsd.portal import forms, i18n
from lmsd.portal.forms import FormErrors
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page, PortalPages
from lmsd.portal.teach.common import (
    LessonView,
    fill,
    lesson_kinds,
    lesson_videos,
    module_in_course,
    notice_of,
    teacher,
    too_long,
    video_statuses,
)
from lmsd.portal.teach.courses import course_page
from lmsd.quizzes import service as quizzes
from lmsd.server.session import DbSession

FORM_LIMIT = 4 * 1024 * 1024  # a lesson body (200,000 characters) form-encoded
LESSON_KINDS = ("text", "video", "quiz")
# the fields of the lesson form on the course page, by the lesson's API field names
NEW_LESSON_FIELDS = {"title": "lesson_title", "kind": "lesson_kind", "video_id": "lesson_video", "quiz_id": "lesson_quiz"}


def _title_error(title: str, empty: str) -> str | None:
    if not title:
        return empty
    return too_long(MAX_TITLE) if len(title) > MAX_TITLE else None


class OutlinePages(PortalPages):
    path = "/"

    # modules ------------------------------------------------------------------------------------------
    @post("/teach/courses/{course_id:uuid}/modules")
    async def add_module(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        title = forms.text(form, "module_title")
        problem = _title_error(title, _("Enter the module's title."))
        if problem:
            errors = FormErrors(module_title=problem)
            return await course_page(page, db, who, course_id, status=422, errors=errors, module_title=title)
        module = await courses.create_module(db, who, course_id, ModuleIn(title=title))
        return page.redirect(f"/teach/courses/{course_id}?notice=module-added#module-{module.id}")

    @post("/teach/modules/{module_id:uuid}/rename")
    async def rename_module(self, request: Request[Any, Any, State], db: DbSession, module_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        module, rel = await courses.load_module(db, who, module_id)
        policy.require(who, "course.update", rel)
        course_id = module.course_id
        field = f"rename_{module_id}"
        title = forms.text(form, field)
        problem = _title_error(title, _("Enter the module's title."))
        if problem:
            errors = FormErrors({field: problem})
            return await course_page(page, db, who, course_id, status=422, errors=errors, renames={field: title})
        try:
            await courses.rename_module(db, who, module_id, title, forms.text(form, "version") or None)
        except (PreconditionFailed, PreconditionRequired):
            return await course_page(
                page, db, who, course_id, status=409, renames={field: title},
                message=_("Someone changed this module after you opened this page. Check its title below and rename it again."),
            )
        return page.redirect(f"/teach/courses/{course_id}?notice=module-renamed#module-{module_id}")

    @post("/teach/modules/{module_id:uuid}/delete")
    async def delete_module(self, request: Request[Any, Any, State], db: DbSession, module_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        await forms.read(page, request)
        module, _rel = await courses.load_module(db, who, module_id)
        course_id = module.course_id
        await courses.delete_module(db, who, module_id)
        return page.redirect(f"/teach/courses/{course_id}?notice=module-deleted#outline")

    @post("/teach/modules/{module_id:uuid}/move")
    async def move_module(self, request: Request[Any, Any, State], db: DbSession, module_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        module = await ordering.move_module(db, who, module_id, forms.text(form, "direction"))
        return page.redirect(f"/teach/courses/{module.course_id}?notice=moved#module-{module_id}")

    # lessons -------------------------------------------------------------------------------------------
    @post("/teach/courses/{course_id:uuid}/lessons")
    async def add_lesson(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        await courses.managed_course(db, who, course_id)
        values = {k: forms.text(form, f"lesson_{k}") for k in ("module", "title", "kind", "video", "quiz")}
        errors = FormErrors()
        module_id = forms.uuid_or_none(values["module"])
        if not await module_in_course(db, who, module_id, course_id):
            errors["lesson_module"] = _("Choose the module the lesson goes in.")
        problem = _title_error(values["title"], _("Enter the lesson's title."))
        if problem:
            errors["lesson_title"] = problem
        kind = values["kind"]
        if kind not in LESSON_KINDS:
            errors["lesson_kind"] = _("Choose the kind of lesson.")
        video_id = forms.uuid_or_none(values["video"]) if kind == "video" else None
        quiz_id = forms.uuid_or_none(values["quiz"]) if kind == "quiz" else None
        if kind == "video" and video_id is None:
            errors["lesson_video"] = _("A video lesson needs a video: choose one (upload it on the Videos page first).")
        if kind == "quiz" and quiz_id is None:
            errors["lesson_quiz"] = _("A quiz lesson needs a quiz: choose one.")
        elif quiz_id is not None and quiz_id not in {q.id for q in await quizzes.course_quizzes(db, who, course_id)}:
            errors["lesson_quiz"] = _("Choose one of this course's quizzes.")
        if not errors:
            assert module_id is not None
            data = forms.convert(
                {"title": values["title"], "kind": kind, "video_id": video_id, "quiz_id": quiz_id}, LessonIn, errors,
                NEW_LESSON_FIELDS,
            )
            if data is not None:
                try:
                    lesson = await courses.create_lesson(db, who, module_id, data)
                except Invalid as exc:  # the video is not this course's
                    errors.show(exc, NEW_LESSON_FIELDS, default="lesson_video")
                else:
                    return page.redirect(f"/teach/courses/{course_id}?notice=lesson-added#lesson-{lesson.id}")
        return await course_page(page, db, who, course_id, status=422, errors=errors, lesson=values)

    @post("/teach/lessons/{lesson_id:uuid}/move")
    async def move_lesson(self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        lesson = await ordering.move_lesson(db, who, lesson_id, forms.text(form, "direction"))
        return page.redirect(f"/teach/courses/{lesson.course_id}?notice=moved#lesson-{lesson_id}")

    # one lesson ------------------------------------------------------------------------------------------
    @get("/teach/lessons/{lesson_id:uuid}")
    async def lesson(
        self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID, notice: str | None = None
    ) -> Response[Any]:
        page, who = await teacher(request, db)
        lesson = await courses.get_lesson(db, who, lesson_id)
        values = {
            "title": lesson.title, "body": lesson.body, "video_id": str(lesson.video_id or ""),
            "quiz_id": str(lesson.quiz_id or ""), "version": str(lesson.version),
        }
        return await _lesson_page(page, db, who, lesson, values, notice=notice_of(notice))

    @post("/teach/lessons/{lesson_id:uuid}", request_max_body_size=FORM_LIMIT)
    async def update_lesson(self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        lesson = await courses.get_lesson(db, who, lesson_id)
        course = await courses.managed_course(db, who, lesson.course_id)
        values = {
            "title": forms.text(form, "title"), "body": forms.text(form, "body", strip=False),
            "video_id": forms.text(form, "video_id"), "quiz_id": forms.text(form, "quiz_id"),
            "version": forms.text(form, "version"),
        }
        errors = FormErrors()
        problem = _title_error(values["title"], _("Enter the lesson's title."))
        if problem:
            errors["title"] = problem
        changes: dict[str, Any] = {"title": values["title"]}
        if lesson.kind == "text":
            if len(values["body"]) > MAX_BODY:
                errors["body"] = fill(_("The text is too long: at most %(limit)s characters."), limit=i18n.fmt_number(MAX_BODY))
            changes["body"] = values["body"]
        elif lesson.kind == "video":
            video_id = forms.uuid_or_none(values["video_id"])
            allowed = {v.id for v in lesson_videos(await media.course_videos(db, who, course.id), lesson.video_id)}
            if video_id is None or video_id not in allowed:
                errors["video_id"] = _("Choose one of this course's videos.")
            changes["video_id"] = video_id
        elif lesson.kind == "quiz":
            quiz_id = forms.uuid_or_none(values["quiz_id"])
            if quiz_id is None or quiz_id not in {q.id for q in await quizzes.course_quizzes(db, who, course.id)}:
                errors["quiz_id"] = _("Choose one of this course's quizzes.")
            changes["quiz_id"] = quiz_id
        if errors:
            return await _lesson_page(page, db, who, lesson, values, errors=errors, status=422)
        try:
            await courses.update_lesson(db, who, lesson_id, LessonPatch(**changes), values["version"] or None)
        except Invalid as exc:
            errors.show(exc, ("title", "body", "video_id", "quiz_id"), default="video_id" if lesson.kind == "video" else "title")
            return await _lesson_page(page, db, who, lesson, values, status=422, errors=errors)
        except (PreconditionFailed, PreconditionRequired):
            return await _lesson_page(
                page, db, who, lesson, values, status=409,
                message=_("Someone changed this lesson after you opened this page, so your changes were not saved. "
                          "Copy what you wrote, reload the page and make your changes again."),
            )
        return page.redirect(f"/teach/lessons/{lesson_id}?notice=lesson-saved")


async def _lesson_page(
    page: Page,
    db: DbSession,
    who: Identity,
    lesson: LessonView,
    values: dict[str, str],
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    notice: str = "",
    message: str = "",
) -> Response[Any]:
    course = await courses.managed_course(db, who, lesson.course_id)
    module, _rel = await courses.load_module(db, who, lesson.module_id)
    videos = lesson_videos(await media.course_videos(db, who, course.id), lesson.video_id) if lesson.kind == "video" else []
    course_quizzes = await quizzes.course_quizzes(db, who, course.id) if lesson.kind == "quiz" else []
    return page.render(
        "teach/lesson.html", status=status, title=fill(_("Edit lesson: %(title)s"), title=lesson.title), lesson=lesson,
        course=course, module=module, values=values, errors=errors or FormErrors(), videos=videos,
        quizzes=course_quizzes, notice=notice, message=message, kinds=lesson_kinds(), video_statuses=video_statuses(),
        section="course",
    )
