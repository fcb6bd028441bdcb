"""Portal: the instructor's pages: courses, modules and lessons, lecture uploads, transcripts, enrolments, gradebook.

Everything is under ``/teach`` and open to instructors and campus admins (learners get the 403
page); per-course rights are the services' (:mod:`lmsd.policy`): a course the instructor does
not teach answers 403, another campus's ids 404. Every change is a form posting to its own URL
with the page's CSRF token, then a redirect (303) back to the page with a notice; invalid input
re-renders the page with status 422, the values typed and a message per field. Edits carry the
version that was read, so a concurrent edit is refused with a message (409) instead of lost.

When a service refuses a change the request's transaction is rolled back before the page is
rendered again (the session would otherwise commit what a failed flush left behind).

The lecture upload is the one part that needs JavaScript: ``static/upload.js`` speaks tus to
``/api/v1/uploads`` with the session cookie and the CSRF header, and resumes after a reload.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import msgspec
from babel import Locale
from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict, State
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.courses import service as courses
from lmsd.courses.schemas import Code, CourseIn, CoursePatch, Lang, LessonIn, LessonPatch, ModuleIn
from lmsd.db.models import Course, Enrolment, Lesson, Module, Quiz, User
from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict, Forbidden, Invalid, LmsdError, NotFound
from lmsd.media import service as media
from lmsd.media.cues import Cue
from lmsd.media.schemas import VideoOut
from lmsd.media.subtitles import MAX_WEBVTT_BYTES, to_webvtt
from lmsd.policy import Identity
from lmsd.portal import i18n
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import FormErrors, Page, PortalPages, portal
from lmsd.quizzes import service as grades
from lmsd.server.errors import status_of

# The course languages offered in the select (any valid tag is accepted; a course's own is added).
COMMON_LANGUAGES = (
    "ar", "ca", "cs", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "hu", "id", "it", "ja", "ko",
    "nl", "no", "pl", "pt", "pt-BR", "ro", "ru", "sv", "th", "tr", "uk", "vi", "zh",
)
MAX_TITLE = 300
MAX_SUMMARY = 5000
MAX_TAGS = 20
MAX_TAG = 64
MAX_BODY = 200_000
UPLOAD_CHUNK = 5 * 1024 * 1024
ENROLMENTS_PER_PAGE = 50
LESSON_KINDS = ("text", "video", "quiz")
FORM_LIMIT = 4 * 1024 * 1024  # a lesson body (200,000 characters) form-encoded
TRANSCRIPT_FORM_LIMIT = 3 * MAX_WEBVTT_BYTES + 64 * 1024


# -- labels (translated when a page is rendered) -------------------------------------------------
def _course_statuses() -> dict[str, str]:
    return {"draft": _("Draft"), "published": _("Published"), "archived": _("Archived")}


def _lesson_kinds() -> dict[str, str]:
    return {"text": _("Text"), "video": _("Video"), "quiz": _("Quiz")}


def _video_statuses() -> dict[str, str]:
    return {
        "uploaded": _("Waiting to be transcoded"), "transcoding": _("Transcoding"), "ready": _("Ready"),
        "failed": _("Failed"),
    }


def _transcript_statuses() -> dict[str, str]:
    return {
        "pending": _("Transcription in progress"), "ready": _("Transcript ready"),
        "failed": _("Transcription failed"), "off": _("Automatic transcription is off"),
    }


def _enrolment_statuses() -> dict[str, str]:
    return {"active": _("Active"), "completed": _("Completed"), "withdrawn": _("Withdrawn")}


def _notices() -> dict[str, str]:
    return {
        "created": _("The course was created. Add modules and lessons below."),
        "saved": _("The changes were saved."),
        "published": _("The course is published: learners can find it in the catalog."),
        "unpublished": _("The course is a draft again: learners no longer see it."),
        "module-added": _("The module was added."),
        "module-renamed": _("The module was renamed."),
        "module-deleted": _("The module and its lessons were deleted."),
        "moved": _("The order was changed."),
        "lesson-added": _("The lesson was added."),
        "lesson-saved": _("The lesson was saved."),
        "transcript-saved": _("The transcript was saved and published as the subtitles."),
        "transcribing": _("The video is being transcribed again; the new transcript replaces this one when it is ready."),
        "enrolled": _("The person was enrolled."),
        "enrolment-changed": _("The enrolment was changed."),
    }


def _f(message: str, **values: Any) -> str:
    """A translated message with its ``%(name)s`` placeholders filled in."""
    return message % values


def _notice(code: str | None) -> str:
    return _notices().get(code or "", "")


def language_label(tag: str) -> str:
    """A language tag's name in the page's language (the tag itself when Babel does not know it)."""
    try:
        name = Locale.parse(tag, sep="-").get_display_name(i18n.current())
    except (ValueError, TypeError):
        return tag
    return f"{name[:1].upper()}{name[1:]}" if name else tag


def _language_options(current: str = "") -> list[tuple[str, str]]:
    codes = list(COMMON_LANGUAGES)
    if current and current not in codes:
        codes.append(current)
    return sorted(((code, language_label(code)) for code in codes), key=lambda item: item[1].casefold())


# -- shared steps ---------------------------------------------------------------------------------------
async def _teacher(request: Request[Any, Any, State], db: AsyncSession) -> tuple[Page, Identity]:
    """The page of a signed-in instructor or admin; anyone else gets the 403 page."""
    page = await portal(request, db)
    who = page.who
    assert who is not None
    if who.role not in ("instructor", "admin"):
        raise Forbidden("only instructors and campus admins teach")
    return page, who


async def _form(page: Page, request: Request[Any, Any, State]) -> FormMultiDict:
    form = await request.form()
    page.check_csrf(str(form.get("csrf_token", "")))
    return form


def _text(form: FormMultiDict, name: str) -> str:
    return str(form.get(name, "") or "").strip()


async def _managed_course(db: AsyncSession, who: Identity, course_id: uuid.UUID) -> Course:
    """The course if ``who`` may change it (404 for what they may not see, 403 for the rest)."""
    course, rel = await courses.load_course(db, who, course_id)
    policy.require(who, "course.update", rel)
    return course


async def _course_quizzes(db: AsyncSession, who: Identity, course_id: uuid.UUID) -> list[Quiz]:
    """The course's quizzes, for the lesson forms (after :func:`_managed_course` said yes)."""
    rows = await db.scalars(
        select(Quiz).where(Quiz.campus_id == who.campus_id, Quiz.course_id == course_id).order_by(Quiz.title, Quiz.id)
    )
    return list(rows.all())


def _lesson_videos(videos: list[VideoOut], keep: uuid.UUID | None = None) -> list[VideoOut]:
    """Videos a lesson may show: ready or still being processed (and the lesson's own)."""
    return [v for v in videos if v.status != "failed" or v.id == keep]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _valid(value: Any, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


def _moved(ids: list[uuid.UUID], item: uuid.UUID, direction: str) -> list[uuid.UUID] | None:
    """``ids`` with ``item`` one place up or down; None when it cannot move that way."""
    if item not in ids or direction not in ("up", "down"):
        return None
    index = ids.index(item)
    other = index - 1 if direction == "up" else index + 1
    if other < 0 or other >= len(ids):
        return None
    ids = list(ids)
    ids[index], ids[other] = ids[other], ids[index]
    return ids


# -- course settings ----------------------------------------------------------------------------------
def _course_values(form: FormMultiDict | None = None, course: Course | None = None) -> dict[str, Any]:
    if form is not None:
        return {
            "code": _text(form, "code"),
            "title": _text(form, "title"),
            "summary": str(form.get("summary", "") or "").strip(),
            "language": _text(form, "language"),
            "tags": _text(form, "tags"),
            "self_enrol": form.get("self_enrol") in ("on", "true", "1"),
            "version": _text(form, "version"),
        }
    if course is not None:
        return {
            "code": course.code, "title": course.title, "summary": course.summary, "language": course.language,
            "tags": ", ".join(course.tags), "self_enrol": course.self_enrol, "version": str(course.version),
        }
    return {"code": "", "title": "", "summary": "", "language": "en", "tags": "", "self_enrol": False, "version": ""}


def _tags(text: str) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def _check_course(values: dict[str, Any], *, new: bool) -> FormErrors:
    errors = FormErrors()
    if new:
        if not values["code"]:
            errors["code"] = _("Enter a course code.")
        elif not _valid(values["code"], Code):
            errors["code"] = _(
                "A course code has at most 64 letters, digits, dots, hyphens and underscores, "
                "and starts with a letter or digit."
            )
    if not values["title"]:
        errors["title"] = _("Enter a title.")
    elif len(values["title"]) > MAX_TITLE:
        errors["title"] = _("The title is too long: at most 300 characters.")
    if len(values["summary"]) > MAX_SUMMARY:
        errors["summary"] = _("The summary is too long: at most 5,000 characters.")
    if not _valid(values["language"], Lang):
        errors["language"] = _("Choose a language from the list.")
    tags = _tags(values["tags"])
    if len(tags) > MAX_TAGS:
        errors["tags"] = _("Give at most 20 tags.")
    elif any(len(t) > MAX_TAG for t in tags):
        errors["tags"] = _("A tag has at most 64 characters.")
    return errors


# -- the controller ------------------------------------------------------------------------------------
class TeachPages(PortalPages):
    path = "/"

    # 1. my courses ---------------------------------------------------------------------------------
    @get("/teach")
    async def index(self, request: Request[Any, Any, State], db: AsyncSession) -> Response[Any]:
        page, who = await _teacher(request, db)
        _enrolled, teaching = await courses.my_courses(db, who)
        counts: dict[uuid.UUID, int] = {}
        if teaching:
            rows = await db.execute(
                select(Enrolment.course_id, func.count())
                .where(
                    Enrolment.campus_id == who.campus_id,
                    Enrolment.course_id.in_([c.id for c in teaching]),
                    Enrolment.status.in_(("active", "completed")),
                )
                .group_by(Enrolment.course_id)
            )
            counts = {row[0]: int(row[1]) for row in rows}
        return page.render(
            "teach/index.html", title=_("Teaching"), courses=teaching, counts=counts, statuses=_course_statuses(),
        )

    # 2. a new course -----------------------------------------------------------------------------------
    @get("/teach/courses/new")
    async def new_course(self, request: Request[Any, Any, State], db: AsyncSession) -> Response[Any]:
        page, who = await _teacher(request, db)
        policy.require(who, "course.create")
        lang = i18n.supported(page.lang) or "en"
        return self._new_course_page(page, {**_course_values(), "language": lang}, FormErrors())

    @staticmethod
    def _new_course_page(page: Page, values: dict[str, Any], errors: FormErrors, status: int = 200) -> Response[Any]:
        return page.render(
            "teach/new_course.html", status=status, title=_("New course"), values=values, errors=errors,
            language_options=_language_options(values["language"]),
        )

    @post("/teach/courses/new")
    async def create_course(self, request: Request[Any, Any, State], db: AsyncSession) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        values = _course_values(form)
        errors = _check_course(values, new=True)
        if not errors:
            data = {
                "code": values["code"], "title": values["title"], "summary": values["summary"],
                "language": values["language"], "tags": _tags(values["tags"]), "self_enrol": values["self_enrol"],
            }
            try:
                course = await courses.create_course(db, who, msgspec.convert(data, CourseIn))
            except Conflict:
                await db.rollback()
                errors["code"] = _("A course with this code already exists on this campus: choose another code.")
            except (Invalid, msgspec.ValidationError) as exc:
                await db.rollback()
                errors[_field_of(str(exc), ("code", "title", "summary", "language", "tags"), "title")] = _f(_("This value is not accepted: %(reason)s"), reason=str(exc)
                )
            else:
                return page.redirect(f"/teach/courses/{course.id}?notice=created")
        return self._new_course_page(page, values, errors, 422)

    # 3. one course: settings, status, outline ------------------------------------------------------------
    @get("/teach/courses/{course_id:uuid}")
    async def course(
        self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID, notice: str | None = None
    ) -> Response[Any]:
        page, who = await _teacher(request, db)
        return await _course_page(page, db, who, course_id, notice=_notice(notice))

    @post("/teach/courses/{course_id:uuid}")
    async def update_course(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        course = await _managed_course(db, who, course_id)
        values = {**_course_values(form), "code": course.code}
        errors = _check_course(values, new=False)
        if errors:
            return await _course_page(page, db, who, course_id, status=422, errors=errors, values=values)
        patch = CoursePatch(
            title=values["title"], summary=values["summary"], language=values["language"], tags=_tags(values["tags"]),
            self_enrol=values["self_enrol"],
        )
        try:
            await courses.update_course(db, who, course_id, patch, values["version"] or None)
        except LmsdError as exc:
            if status_of(exc)[0] not in (412, 428):
                raise
            await db.rollback()
            return await _course_page(
                page, db, who, course_id, status=409, values=values,
                message=_("Someone changed this course after you opened this page, so your changes were not saved. "
                          "Reload the page to see the course as it is now, then make your changes again."),
            )
        return page.redirect(f"/teach/courses/{course_id}?notice=saved")

    @post("/teach/courses/{course_id:uuid}/status")
    async def set_course_status(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        status = _text(form, "status")
        if status not in ("published", "draft"):
            raise Invalid("status must be published or draft")
        try:
            await courses.update_course(db, who, course_id, CoursePatch(status="published" if status == "published" else "draft"), _text(form, "version") or None)
        except LmsdError as exc:
            if status_of(exc)[0] not in (412, 428):
                raise
            await db.rollback()
            return await _course_page(
                page, db, who, course_id, status=409,
                message=_("Someone changed this course after you opened this page. "
                          "Check the course below, then publish or unpublish it again."),
            )
        return page.redirect(f"/teach/courses/{course_id}?notice={'published' if status == 'published' else 'unpublished'}")

    # modules ------------------------------------------------------------------------------------------
    @post("/teach/courses/{course_id:uuid}/modules")
    async def add_module(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        title = _text(form, "module_title")
        errors = FormErrors()
        if not title:
            errors["module_title"] = _("Enter the module's title.")
        elif len(title) > MAX_TITLE:
            errors["module_title"] = _("The title is too long: at most 300 characters.")
        if errors:
            await _managed_course(db, who, course_id)
            return await _course_page(page, db, who, course_id, status=422, errors=errors, module_title=title)
        module = await courses.create_module(db, who, course_id, ModuleIn(title=title))
        return page.redirect(f"/teach/courses/{course_id}?notice=module-added#module-{module.id}")

    @post("/teach/modules/{module_id:uuid}/rename")
    async def rename_module(self, request: Request[Any, Any, State], db: AsyncSession, module_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        module, rel = await courses.load_module(db, who, module_id)
        policy.require(who, "course.update", rel)
        course_id = module.course_id
        field = f"rename_{module_id}"
        title = _text(form, field)
        errors = FormErrors()
        if not title:
            errors[field] = _("Enter the module's title.")
        elif len(title) > MAX_TITLE:
            errors[field] = _("The title is too long: at most 300 characters.")
        if errors:
            return await _course_page(page, db, who, course_id, status=422, errors=errors, renames={field: title})
        try:
            await courses.rename_module(db, who, module_id, title, _text(form, "version") or None)
        except LmsdError as exc:
            if status_of(exc)[0] not in (412, 428):
                raise
            await db.rollback()
            return await _course_page(
                page, db, who, course_id, status=409, renames={field: title},
                message=_("Someone changed this module after you opened this page. Check its title below and rename it again."),
            )
        return page.redirect(f"/teach/courses/{course_id}?notice=module-renamed#module-{module_id}")

    @post("/teach/modules/{module_id:uuid}/delete")
    async def delete_module(self, request: Request[Any, Any, State], db: AsyncSession, module_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        await _form(page, request)
        module, _rel = await courses.load_module(db, who, module_id)
        course_id = module.course_id
        await courses.delete_module(db, who, module_id)
        return page.redirect(f"/teach/courses/{course_id}?notice=module-deleted#outline")

    @post("/teach/modules/{module_id:uuid}/move")
    async def move_module(self, request: Request[Any, Any, State], db: AsyncSession, module_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        module, rel = await courses.load_module(db, who, module_id)
        policy.require(who, "course.update", rel)
        _course, _people, modules, _lessons = await courses.outline(db, who, module.course_id)
        order = _moved([m.id for m in modules], module_id, _text(form, "direction"))
        if order is not None:
            await courses.reorder(db, who, module.course_id, order, module_id=None)
        return page.redirect(f"/teach/courses/{module.course_id}?notice=moved#module-{module_id}")

    # lessons -------------------------------------------------------------------------------------------
    @post("/teach/courses/{course_id:uuid}/lessons")
    async def add_lesson(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        await _managed_course(db, who, course_id)
        values = {k: _text(form, f"lesson_{k}") for k in ("module", "title", "kind", "video", "quiz")}
        errors = FormErrors()
        module_id = _uuid(values["module"])
        module = await db.get(Module, (who.campus_id, module_id)) if module_id else None
        if module is None or module.course_id != course_id:
            errors["lesson_module"] = _("Choose the module the lesson goes in.")
        if not values["title"]:
            errors["lesson_title"] = _("Enter the lesson's title.")
        elif len(values["title"]) > MAX_TITLE:
            errors["lesson_title"] = _("The title is too long: at most 300 characters.")
        kind = values["kind"]
        if kind not in LESSON_KINDS:
            errors["lesson_kind"] = _("Choose the kind of lesson.")
        video_id = _uuid(values["video"]) if kind == "video" else None
        quiz_id = _uuid(values["quiz"]) if kind == "quiz" else None
        if kind == "video" and video_id is None:
            errors["lesson_video"] = _("A video lesson needs a video: choose one (upload it on the Videos page first).")
        if kind == "quiz" and quiz_id is None:
            errors["lesson_quiz"] = _("A quiz lesson needs a quiz: choose one.")
        if kind == "quiz" and quiz_id is not None and quiz_id not in {q.id for q in await _course_quizzes(db, who, course_id)}:
            errors["lesson_quiz"] = _("Choose one of this course's quizzes.")
        if not errors:
            assert module_id is not None
            data = LessonIn(title=values["title"], kind=kind, video_id=video_id, quiz_id=quiz_id)  # type: ignore[arg-type]
            try:
                lesson = await courses.create_lesson(db, who, module_id, data)
            except Invalid:
                await db.rollback()
                errors["lesson_video"] = _("Choose one of this course's videos.")
            else:
                return page.redirect(f"/teach/courses/{course_id}?notice=lesson-added#lesson-{lesson.id}")
        return await _course_page(page, db, who, course_id, status=422, errors=errors, lesson=values)

    @post("/teach/lessons/{lesson_id:uuid}/move")
    async def move_lesson(self, request: Request[Any, Any, State], db: AsyncSession, lesson_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        lesson = await courses.get_lesson(db, who, lesson_id)
        await _managed_course(db, who, lesson.course_id)
        siblings = (
            await db.scalars(
                select(Lesson.id)
                .where(Lesson.campus_id == who.campus_id, Lesson.module_id == lesson.module_id)
                .order_by(Lesson.position, Lesson.id)
            )
        ).all()
        order = _moved(list(siblings), lesson_id, _text(form, "direction"))
        if order is not None:
            await courses.reorder(db, who, lesson.course_id, order, module_id=lesson.module_id)
        return page.redirect(f"/teach/courses/{lesson.course_id}?notice=moved#lesson-{lesson_id}")

    # 4. one lesson ------------------------------------------------------------------------------------------
    @get("/teach/lessons/{lesson_id:uuid}")
    async def lesson(
        self, request: Request[Any, Any, State], db: AsyncSession, lesson_id: uuid.UUID, notice: str | None = None
    ) -> Response[Any]:
        page, who = await _teacher(request, db)
        lesson = await courses.get_lesson(db, who, lesson_id)
        values = {
            "title": lesson.title, "body": lesson.body, "video_id": str(lesson.video_id or ""),
            "quiz_id": str(lesson.quiz_id or ""), "version": str(lesson.version),
        }
        return await _lesson_page(page, db, who, lesson, values, notice=_notice(notice))

    @post("/teach/lessons/{lesson_id:uuid}", request_max_body_size=FORM_LIMIT)
    async def update_lesson(self, request: Request[Any, Any, State], db: AsyncSession, lesson_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        lesson = await courses.get_lesson(db, who, lesson_id)
        course = await _managed_course(db, who, lesson.course_id)
        values = {
            "title": _text(form, "title"), "body": str(form.get("body", "") or ""), "video_id": _text(form, "video_id"),
            "quiz_id": _text(form, "quiz_id"), "version": _text(form, "version"),
        }
        errors = FormErrors()
        if not values["title"]:
            errors["title"] = _("Enter the lesson's title.")
        elif len(values["title"]) > MAX_TITLE:
            errors["title"] = _("The title is too long: at most 300 characters.")
        changes: dict[str, Any] = {"title": values["title"]}
        if lesson.kind == "text":
            if len(values["body"]) > MAX_BODY:
                errors["body"] = _("The text is too long: at most 200,000 characters.")
            changes["body"] = values["body"]
        elif lesson.kind == "video":
            video_id = _uuid(values["video_id"])
            allowed = {v.id for v in _lesson_videos(await media.course_videos(db, who, course.id), lesson.video_id)}
            if video_id is None or video_id not in allowed:
                errors["video_id"] = _("Choose one of this course's videos.")
            changes["video_id"] = video_id
        elif lesson.kind == "quiz":
            quiz_id = _uuid(values["quiz_id"])
            if quiz_id is None or quiz_id not in {q.id for q in await _course_quizzes(db, who, course.id)}:
                errors["quiz_id"] = _("Choose one of this course's quizzes.")
            changes["quiz_id"] = quiz_id
        if errors:
            return await _lesson_page(page, db, who, lesson, values, errors=errors, status=422)
        try:
            await courses.update_lesson(db, who, lesson_id, LessonPatch(**changes), values["version"] or None)
        except LmsdError as exc:
            if status_of(exc)[0] not in (412, 428, 422):
                raise
            await db.rollback()
            lesson = await courses.get_lesson(db, who, lesson_id)
            if status_of(exc)[0] == 422:
                return await _lesson_page(
                    page, db, who, lesson, values, status=422,
                    errors=FormErrors({"video_id" if lesson.kind == "video" else "title": _f(_("This value is not accepted: %(reason)s"), reason=str(exc))}),
                )
            return await _lesson_page(
                page, db, who, lesson, values, status=409,
                message=_("Someone changed this lesson after you opened this page, so your changes were not saved. "
                          "Copy what you wrote, reload the page and make your changes again."),
            )
        return page.redirect(f"/teach/lessons/{lesson_id}?notice=lesson-saved")

    # 5. videos -----------------------------------------------------------------------------------------
    @get("/teach/courses/{course_id:uuid}/videos")
    async def videos(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        return await _videos_page(page, db, who, course_id)

    @post("/teach/courses/{course_id:uuid}/video-lessons")
    async def add_video_lesson(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        await _managed_course(db, who, course_id)
        values = {"video": _text(form, "video"), "module": _text(form, "module"), "title": _text(form, "lesson_title")}
        errors = FormErrors()
        videos = {v.id: v for v in _lesson_videos(await media.course_videos(db, who, course_id))}
        video_id = _uuid(values["video"])
        if video_id is None or video_id not in videos:
            errors["video"] = _("Choose one of this course's videos.")
        module_id = _uuid(values["module"])
        module = await db.get(Module, (who.campus_id, module_id)) if module_id else None
        if module is None or module.course_id != course_id:
            errors["module"] = _("Choose the module the lesson goes in.")
        if len(values["title"]) > MAX_TITLE:
            errors["lesson_title"] = _("The title is too long: at most 300 characters.")
        if errors:
            return await _videos_page(page, db, who, course_id, status=422, errors=errors, values=values)
        assert video_id is not None and module_id is not None
        title = values["title"] or videos[video_id].title
        lesson = await courses.create_lesson(db, who, module_id, LessonIn(title=title, kind="video", video_id=video_id))
        return page.redirect(f"/teach/courses/{course_id}?notice=lesson-added#lesson-{lesson.id}")

    # 6. a transcript ------------------------------------------------------------------------------------
    @get("/teach/videos/{video_id:uuid}/transcript")
    async def transcript(
        self, request: Request[Any, Any, State], db: AsyncSession, video_id: uuid.UUID, notice: str | None = None
    ) -> Response[Any]:
        page, who = await _teacher(request, db)
        return await _transcript_page(page, db, who, video_id, notice=_notice(notice))

    @post("/teach/videos/{video_id:uuid}/transcript", request_max_body_size=TRANSCRIPT_FORM_LIMIT)
    async def save_transcript(self, request: Request[Any, Any, State], db: AsyncSession, video_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        text = str(form.get("webvtt", "") or "")
        try:
            await media.publish_transcript(db, who, page.settings, video_id, None, text)
        except Invalid as exc:
            await db.rollback()
            errors = FormErrors({"webvtt": _f(_("This is not a valid WebVTT transcript: %(reason)s"), reason=str(exc))})
            return await _transcript_page(page, db, who, video_id, status=422, errors=errors, text=text)
        return page.redirect(f"/teach/videos/{video_id}/transcript?notice=transcript-saved")

    @post("/teach/videos/{video_id:uuid}/transcribe")
    async def transcribe(self, request: Request[Any, Any, State], db: AsyncSession, video_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        await _form(page, request)
        try:
            await media.request_transcription(db, who, page.settings, video_id, None)
        except Conflict as exc:
            await db.rollback()
            return await _transcript_page(
                page, db, who, video_id, status=409,
                message=_f(_("The video cannot be transcribed now: %(reason)s"), reason=str(exc)),
            )
        return page.redirect(f"/teach/videos/{video_id}/transcript?notice=transcribing")

    # 7. enrolments -------------------------------------------------------------------------------------
    @get("/teach/courses/{course_id:uuid}/enrolments")
    async def enrolments(
        self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID,
        cursor: str | None = None, notice: str | None = None,
    ) -> Response[Any]:
        page, who = await _teacher(request, db)
        return await _enrolments_page(page, db, who, course_id, cursor=cursor, notice=_notice(notice))

    @post("/teach/courses/{course_id:uuid}/enrolments")
    async def enrol(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        _course, rel = await courses.load_course(db, who, course_id)
        policy.require(who, "enrolment.manage", rel)
        email = _text(form, "email").lower()
        errors = FormErrors()
        user_id = None
        if not email or "@" not in email:
            errors["email"] = _("Enter the person's e-mail address.")
        else:
            user_id = await db.scalar(select(User.id).where(User.campus_id == who.campus_id, User.email == email))
            if user_id is None:
                errors["email"] = _("Nobody on this campus has this e-mail address.")
        if not errors:
            assert user_id is not None
            try:
                await enrolments.enrol_user(db, who, course_id, user_id, None, None)
            except Conflict:
                await db.rollback()
                errors["email"] = _("This person is already enrolled in the course.")
            else:
                return page.redirect(f"/teach/courses/{course_id}/enrolments?notice=enrolled")
        return await _enrolments_page(page, db, who, course_id, status=422, errors=errors, email=email)

    @post("/teach/enrolments/{enrolment_id:uuid}/status")
    async def enrolment_status(self, request: Request[Any, Any, State], db: AsyncSession, enrolment_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        form = await _form(page, request)
        status = _text(form, "status")
        if status not in ("active", "withdrawn"):
            raise Invalid("status must be active or withdrawn")
        enrolment = await db.get(Enrolment, (who.campus_id, enrolment_id))
        if enrolment is None:
            raise NotFound("no such enrolment")
        _course, rel = await courses.load_course(db, who, enrolment.course_id)
        policy.require(who, "enrolment.manage", rel)  # not only one's own withdrawal, here
        changed = await enrolments.set_status(db, who, enrolment_id, status)
        return page.redirect(f"/teach/courses/{changed.course_id}/enrolments?notice=enrolment-changed")

    # 8. gradebook -------------------------------------------------------------------------------------
    @get("/teach/courses/{course_id:uuid}/gradebook")
    async def gradebook(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        course = await _managed_course(db, who, course_id)
        quizzes_, maxima, rows = await _gradebook(db, who, course_id)
        return page.render(
            "teach/gradebook.html", title=_f(_("Gradebook: %(course)s"), course=course.title), course=course,
            quizzes=quizzes_, maxima=maxima, rows=rows, section="gradebook",
        )

    @get("/teach/courses/{course_id:uuid}/gradebook.csv")
    async def gradebook_csv(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await _teacher(request, db)
        course = await _managed_course(db, who, course_id)
        quizzes_, maxima, rows = await _gradebook(db, who, course_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["learner", "email", *(f"{q.title} (/{_plain(maxima.get(q.id, 0.0))})" for q in quizzes_), "total"])
        for user, cells, total in rows:
            writer.writerow([
                _cell(user.display_name), _cell(user.email),
                *(_plain(best) for best in (cells[q.id][0] for q in quizzes_)), _plain(total),
            ])
        filename = f"{course.code}-gradebook.csv"
        return Response(
            out.getvalue(), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"},
        )


def _field_of(message: str, fields: tuple[str, ...], default: str) -> str:
    """The form field a service's or validator's message is about (``$.code`` or ``code``)."""
    for name in fields:
        if f"$.{name}" in message or message.startswith(name):
            return name
    return default


def _plain(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _gradebook(
    db: AsyncSession, who: Identity, course_id: uuid.UUID
) -> tuple[list[Quiz], dict[uuid.UUID, float], list[tuple[User, dict[uuid.UUID, tuple[float | None, int]], float]]]:
    quizzes_, maxima, rows = await grades.gradebook(db, who, course_id)
    with_totals = [(user, cells, sum(best or 0.0 for best, _n in cells.values())) for user, cells in rows]
    return quizzes_, maxima, with_totals


# -- page builders -------------------------------------------------------------------------------------
async def _course_page(
    page: Page,
    db: AsyncSession,
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
    course = await _managed_course(db, who, course_id)
    _course, _people, modules, lessons = await courses.outline(db, who, course_id)
    videos = _lesson_videos(await media.course_videos(db, who, course_id))
    quizzes_ = await _course_quizzes(db, who, course_id)
    values = values or _course_values(course=course)
    return page.render(
        "teach/course.html", status=status, title=course.title, course=course, values=values,
        errors=errors or FormErrors(), modules=modules, lessons=lessons, videos=videos, quizzes=quizzes_,
        lesson=lesson or {"module": "", "title": "", "kind": "text", "video": "", "quiz": ""},
        module_title=module_title, renames=renames or {}, notice=notice, message=message,
        language_options=_language_options(values["language"]), statuses=_course_statuses(), kinds=_lesson_kinds(),
        section="course",
    )


async def _lesson_page(
    page: Page,
    db: AsyncSession,
    who: Identity,
    lesson: Lesson,
    values: dict[str, str],
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    notice: str = "",
    message: str = "",
) -> Response[Any]:
    course = await _managed_course(db, who, lesson.course_id)
    module = await db.get(Module, (who.campus_id, lesson.module_id))
    videos = _lesson_videos(await media.course_videos(db, who, course.id), lesson.video_id) if lesson.kind == "video" else []
    quizzes_ = await _course_quizzes(db, who, course.id) if lesson.kind == "quiz" else []
    return page.render(
        "teach/lesson.html", status=status, title=_f(_("Edit lesson: %(title)s"), title=lesson.title), lesson=lesson,
        course=course, module=module, values=values, errors=errors or FormErrors(), videos=videos, quizzes=quizzes_,
        notice=notice, message=message, kinds=_lesson_kinds(), video_statuses=_video_statuses(), section="course",
    )


async def _videos_page(
    page: Page,
    db: AsyncSession,
    who: Identity,
    course_id: uuid.UUID,
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response[Any]:
    course = await _managed_course(db, who, course_id)
    videos = await media.course_videos(db, who, course_id)
    _course, _people, modules, _lessons = await courses.outline(db, who, course_id)
    return page.render(
        "teach/videos.html", status=status, title=_f(_("Videos: %(course)s"), course=course.title), course=course,
        videos=videos, lesson_videos=_lesson_videos(videos), modules=modules, errors=errors or FormErrors(),
        values=values or {"video": "", "module": "", "title": ""}, video_statuses=_video_statuses(),
        transcript_statuses=_transcript_statuses(), chunk_size=UPLOAD_CHUNK,
        accept=",".join(page.settings.media.allowed_types), section="videos",
    )


async def _transcript_page(
    page: Page,
    db: AsyncSession,
    who: Identity,
    video_id: uuid.UUID,
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    text: str | None = None,
    notice: str = "",
    message: str = "",
) -> Response[Any]:
    video = await media.get_video(db, who, video_id)
    course = await _managed_course(db, who, video.course_id)
    revision: int | None = None
    source = ""
    if text is None:
        try:
            found = await media.transcript(db, who, video_id, None)
        except NotFound:
            text = ""
        else:
            text = to_webvtt(Cue(c.start_s, c.end_s, c.text) for c in found.cues)
            revision, source = found.revision, found.source
    return page.render(
        "teach/transcript.html", status=status, title=_f(_("Transcript: %(video)s"), video=video.title), video=video,
        course=course, text=text, revision=revision, source=source, errors=errors or FormErrors(), notice=notice,
        message=message, language=language_label(video.language), transcript_statuses=_transcript_statuses(),
        video_statuses=_video_statuses(), section="videos",
    )


async def _enrolments_page(
    page: Page,
    db: AsyncSession,
    who: Identity,
    course_id: uuid.UUID,
    *,
    cursor: str | None = None,
    status: int = 200,
    errors: FormErrors | None = None,
    email: str = "",
    notice: str = "",
) -> Response[Any]:
    course = await _managed_course(db, who, course_id)
    found = await enrolments.list_enrolments(db, who, course_id, cursor, ENROLMENTS_PER_PAGE)
    people: dict[uuid.UUID, User] = {}
    if found.items:
        users = await db.scalars(
            select(User).where(User.campus_id == who.campus_id, User.id.in_([e.user_id for e in found.items]))
        )
        people = {u.id: u for u in users}
    return page.render(
        "teach/enrolments.html", status=status, title=_f(_("Enrolments: %(course)s"), course=course.title), course=course,
        items=found.items, people=people, next_cursor=found.next_cursor, first_page=not cursor,
        errors=errors or FormErrors(), email=email, notice=notice, statuses=_enrolment_statuses(), section="enrolments",
    )
