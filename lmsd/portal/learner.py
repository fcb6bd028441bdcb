"""Portal: the learner's pages: catalog, course, enrolment, lessons (text, video, quiz), my courses, profile.

Every page calls the same services as the JSON API with the signed-in identity, so what a
learner may see is decided by :mod:`lmsd.policy` (another campus's ids are 404, a course the
learner is not enrolled in shows its outline but not its lessons: 403).

Progress comes from the learning projections (``lmsd.learning.service.progress``), which the
worker fills asynchronously from the events these pages record:

- opening a lesson records ``lesson_started`` once, the first time (when the projection has no
  start for it yet), so "last opened" is known;
- "Mark as complete" (text and video lessons) records ``lesson_completed``;
- submitting a quiz attempt completes the quiz lesson (``lesson_completed`` beside the quiz's
  own events);
- "Continue" goes to the first lesson, in outline order, that is not completed, or to the last
  lesson opened when all are.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import State
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.courses import service as courses
from lmsd.db.models import Attempt, Course, Enrolment, Lesson, Module, Question, User
from lmsd.enrolments import service as enrolments
from lmsd.errors import Conflict, NotFound
from lmsd.learning import service as learning
from lmsd.learning.schemas import ActivityBatch, ActivityIn, ProgressOut
from lmsd.media import service as media
from lmsd.policy import Identity
from lmsd.portal import i18n
from lmsd.portal.i18n import gettext as _
from lmsd.portal.markdown import render as render_markdown
from lmsd.portal.pages import FormErrors, Page, PortalPages, portal
from lmsd.portal.video import Transcoding, render_watch_page
from lmsd.quizzes import service as quizzes

NAME_MAX = 200
CATALOG_PAGE = 12


def _notices() -> dict[str, str]:
    """Messages a redirect may ask the next page to show (``?notice=key``), in the page's language."""
    return {
        "enrolled": _("You are enrolled. Welcome to the course!"),
        "completed": _("Lesson marked as complete."),
        "course-done": _("You have completed every lesson of this course. Well done!"),
        "preview": _("This is a preview: staff activity is not recorded."),
        "saved": _("Your profile has been saved."),
        "already": _("You are already enrolled in this course."),
    }


def _notice(key: str | None) -> str:
    return _notices().get(key or "", "")


def language_name(code: str) -> str:
    """A course language's name in the page's language (``fr`` → "French"/"français")."""
    try:
        return i18n.language_name(code)
    except Exception:  # an unusual but valid tag Babel does not know
        return code


def kind_name(kind: str) -> str:
    return {"text": _("Reading"), "video": _("Video"), "quiz": _("Quiz")}.get(kind, kind)


def role_name(role: str) -> str:
    return {"learner": _("Learner"), "instructor": _("Instructor"), "admin": _("Administrator")}.get(role, role)


@dataclass
class Outline:
    course: Course
    instructors: list[User]
    modules: list[Module]
    lessons: dict[uuid.UUID, list[Lesson]]
    rel: policy.Relations

    @property
    def ordered(self) -> list[Lesson]:
        """Every lesson in reading order: modules in order, their lessons in order."""
        return [lesson for m in self.modules for lesson in self.lessons.get(m.id, [])]


@dataclass
class Standing:
    """The signed-in learner's enrolment in one course and what the projection says of it."""

    enrolment: Enrolment | None = None
    progress: ProgressOut | None = None
    done: set[uuid.UUID] = field(default_factory=set)
    started: set[uuid.UUID] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.enrolment is not None and self.enrolment.status == "active"

    @property
    def enrolled(self) -> bool:
        return self.enrolment is not None and self.enrolment.status in ("active", "completed")


async def _outline(db: AsyncSession, who: Identity, course_id: uuid.UUID) -> Outline:
    course, instructors, modules, lessons = await courses.outline(db, who, course_id)
    rel = await courses.relations(db, who, course_id)
    return Outline(course, instructors, modules, lessons, rel)


async def _standing(db: AsyncSession, who: Identity, course_id: uuid.UUID) -> Standing:
    """The learner's own enrolment row (as the watch page reads it) and its progress."""
    enrolment = await db.scalar(
        select(Enrolment).where(
            Enrolment.campus_id == who.campus_id, Enrolment.course_id == course_id, Enrolment.user_id == who.user_id
        )
    )
    if enrolment is None or enrolment.status == "withdrawn":
        return Standing(enrolment)
    found = await learning.progress(db, who, enrolment.id)
    return Standing(
        enrolment, found,
        done={p.lesson_id for p in found.lessons if p.completed_at is not None},
        started={p.lesson_id for p in found.lessons if p.started_at is not None},
    )


def _fraction(outline: Outline, standing: Standing) -> float:
    ids = [lesson.id for lesson in outline.ordered]
    if not ids:
        return 0.0
    if standing.enrolment is not None and standing.enrolment.status == "completed":
        return 1.0
    return len([i for i in ids if i in standing.done]) / len(ids)


def _continue(outline: Outline, standing: Standing) -> Lesson | None:
    """The first lesson not completed, in outline order; when all are, the last one opened."""
    ordered = outline.ordered
    for lesson in ordered:
        if lesson.id not in standing.done:
            return lesson
    last = standing.progress.last_lesson_id if standing.progress is not None else None
    return next((lesson for lesson in ordered if lesson.id == last), ordered[-1] if ordered else None)


async def _record(db: AsyncSession, page: Page, standing: Standing, lesson_id: uuid.UUID, kind: str) -> None:
    assert page.who is not None and standing.enrolment is not None
    batch = ActivityBatch(events=[ActivityIn(enrolment_id=standing.enrolment.id, type=kind, lesson_id=lesson_id)])  # type: ignore[arg-type]
    await learning.record_activity(db, page.who, batch, page.settings.events.max_batch)


def _media_origins(page: Page) -> list[str]:
    return sorted({f"{u.scheme}://{u.netloc}" for u in (urlsplit(p.base_url) for p in page.settings.media.pathways)})


class LearnerPages(PortalPages):
    path = "/"

    # -- catalog ------------------------------------------------------------------------------

    @get("/catalog")
    async def catalog(
        self, request: Request[Any, Any, State], db: AsyncSession,
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
        published = (Course.campus_id == who.campus_id, Course.status == "published")
        languages = sorted((await db.scalars(select(Course.language).where(*published).distinct())).all())
        tags = sorted((await db.scalars(select(func.unnest(Course.tags)).where(*published).distinct().limit(200))).all())
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

    # -- course -------------------------------------------------------------------------------

    @get("/courses/{course_id:uuid}")
    async def course(
        self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID, notice: str = ""
    ) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        return await self._course_page(page, db, course_id, _notice(notice))

    async def _course_page(
        self, page: Page, db: AsyncSession, course_id: uuid.UUID, notice: str = "", status: int = 200, error: str = ""
    ) -> Response[Any]:
        assert page.who is not None
        outline = await _outline(db, page.who, course_id)
        standing = await _standing(db, page.who, course_id)
        staff = policy.allowed(page.who, "course.update", outline.rel)
        can_enrol = (
            not standing.enrolled and outline.course.status == "published" and outline.course.self_enrol
            and policy.allowed(page.who, "enrolment.self", outline.rel)
        )
        return page.render(
            "learner/course.html", status=status, title=outline.course.title, outline=outline, standing=standing,
            staff=staff, can_read=standing.enrolled or policy.allowed(page.who, "lesson.read", outline.rel),
            can_enrol=can_enrol, fraction=_fraction(outline, standing), next_lesson=_continue(outline, standing),
            notice=notice, error=error, language_name=language_name, kind_name=kind_name,
            done_count=len([lesson for lesson in outline.ordered if lesson.id in standing.done]),
        )

    @post("/courses/{course_id:uuid}/enrol", status_code=303)
    async def enrol(self, request: Request[Any, Any, State], db: AsyncSession, course_id: uuid.UUID) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        page.check_csrf(str((await request.form()).get("csrf_token", "")))
        try:
            await enrolments.enrol_self(db, page.who, course_id)
        except Conflict:
            standing = await _standing(db, page.who, course_id)
            if standing.enrolled:
                return page.redirect(f"/courses/{course_id}?notice=already")
            return await self._course_page(
                page, db, course_id, status=409, error=_("This course is not open for self-enrolment.")
            )
        return page.redirect(f"/courses/{course_id}?notice=enrolled")

    # -- lessons ------------------------------------------------------------------------------

    @get("/lessons/{lesson_id:uuid}")
    async def lesson(
        self, request: Request[Any, Any, State], db: AsyncSession, lesson_id: uuid.UUID, notice: str = ""
    ) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        return await self._lesson_page(page, db, lesson_id, notice=_notice(notice))

    async def _lesson_page(
        self, page: Page, db: AsyncSession, lesson_id: uuid.UUID, *, notice: str = "", status: int = 200,
        answers: dict[str, Any] | None = None, errors: FormErrors | None = None, error: str = "",
    ) -> Response[Any]:
        assert page.who is not None
        who = page.who
        lesson = await courses.get_lesson(db, who, lesson_id)  # 404 elsewhere, 403 when not enrolled
        outline = await _outline(db, who, lesson.course_id)
        standing = await _standing(db, who, lesson.course_id)
        if standing.active and lesson.id not in standing.started and lesson.id not in standing.done:
            await _record(db, page, standing, lesson.id, "lesson_started")
        ordered = outline.ordered
        index = next(i for i, item in enumerate(ordered) if item.id == lesson.id)
        module = next(m for m in outline.modules if m.id == lesson.module_id)
        values: dict[str, Any] = {
            "lesson": lesson, "outline": outline, "module": module, "standing": standing,
            "previous": ordered[index - 1] if index > 0 else None,
            "next": ordered[index + 1] if index + 1 < len(ordered) else None,
            "position": index + 1, "count": len(ordered), "notice": notice, "error": error,
            "done": lesson.id in standing.done, "kind_name": kind_name,
        }
        csp: str | None = None
        if lesson.kind == "text":
            values["body"] = render_markdown(lesson.body, heading_offset=1)
        elif lesson.kind == "video" and lesson.video_id is not None:
            player = await self._player(page, db, lesson)
            values["player"] = player.body
            csp = player.csp
        elif lesson.kind == "quiz" and lesson.quiz_id is not None:
            quiz, questions, rel = await quizzes.load_quiz(db, who, lesson.quiz_id)
            used = await _attempts_used(db, who, quiz.id)
            values.update(
                quiz=quiz, questions=questions, answers=answers or {}, errors=errors or FormErrors(),
                may_attempt=policy.allowed(who, "quiz.attempt", rel),
                attempts_used=used, attempts_left=(max(0, quiz.max_attempts - used) if quiz.max_attempts else None),
            )
        return page.render("learner/lesson.html", status=status, csp=csp, title=lesson.title, **values)

    async def _player(self, page: Page, db: AsyncSession, lesson: Lesson) -> Any:
        assert page.who is not None and lesson.video_id is not None
        app = page.request.app.state
        video = await media.get_video(db, page.who, lesson.video_id)
        progress_url = f"/watch/{lesson.id}/progress"
        if video.status != "ready":
            return render_watch_page(
                title=lesson.title, master_url="", progress_url=progress_url, csrf_token=page.csrf,
                transcoding=Transcoding(percent=video.progress, status_url=f"/watch/{lesson.id}/status"),
            )
        grant = await media.playback(db, page.who, app.settings, app.secrets, lesson.video_id, media.now())
        return render_watch_page(
            title=lesson.title, master_url=grant.master_url, progress_url=progress_url, csrf_token=page.csrf,
            poster_url=grant.poster_url or None, captions=True, language=video.language,
            thumbnails_vtt_url=grant.thumbnails_url or None, media_origins=_media_origins(page),
        )

    @post("/lessons/{lesson_id:uuid}/complete", status_code=303)
    async def complete(self, request: Request[Any, Any, State], db: AsyncSession, lesson_id: uuid.UUID) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        page.check_csrf(str((await request.form()).get("csrf_token", "")))
        lesson = await courses.get_lesson(db, page.who, lesson_id)
        outline = await _outline(db, page.who, lesson.course_id)
        standing = await _standing(db, page.who, lesson.course_id)
        if not standing.active:
            return page.redirect(f"/lessons/{lesson_id}?notice=preview")
        await _record(db, page, standing, lesson.id, "lesson_completed")
        standing.done.add(lesson.id)
        return page.redirect(self._after(outline, standing, lesson))

    @staticmethod
    def _after(outline: Outline, standing: Standing, lesson: Lesson) -> str:
        """Where to go once a lesson is done: the next lesson not done yet, else the course."""
        ordered = outline.ordered
        index = next(i for i, item in enumerate(ordered) if item.id == lesson.id)
        for item in ordered[index + 1:] + ordered[:index]:
            if item.id not in standing.done:
                return f"/lessons/{item.id}?notice=completed"
        return f"/courses/{outline.course.id}?notice=course-done"

    @post("/lessons/{lesson_id:uuid}/quiz")
    async def quiz(self, request: Request[Any, Any, State], db: AsyncSession, lesson_id: uuid.UUID) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        who = page.who
        form = await request.form()
        page.check_csrf(str(form.get("csrf_token", "")))
        lesson = await courses.get_lesson(db, who, lesson_id)
        if lesson.kind != "quiz" or lesson.quiz_id is None:
            raise NotFound("this lesson has no quiz")
        quiz, questions, rel = await quizzes.load_quiz(db, who, lesson.quiz_id)
        typed: dict[str, Any] = {}
        answers: dict[str, Any] = {}
        errors = FormErrors()
        for number, question in enumerate(questions, start=1):
            name = f"q-{question.id}"
            values = [str(v).strip() for v in form.getall(name, [])] if hasattr(form, "getall") else []
            values = [v for v in values if v]
            typed[name] = values
            if not values:
                errors[name] = (
                    _("Question %(number)s: choose an answer.") if question.kind in ("single", "multiple")
                    else _("Question %(number)s: enter an answer.")
                ) % {"number": number}
                continue
            parsed = _parse_answer(question, values)
            if parsed is None:
                errors[name] = (
                    _("Question %(number)s: enter a number, such as 2.5.") if question.kind == "numeric"
                    else _("Question %(number)s: choose one of the options.")
                ) % {"number": number}
                continue
            answers[str(question.id)] = parsed
        if not policy.allowed(who, "quiz.attempt", rel):
            return await self._lesson_page(
                page, db, lesson_id, status=403, answers=typed,
                error=_("Only learners enrolled in this course can submit this quiz."),
            )
        if errors:
            return await self._lesson_page(page, db, lesson_id, status=422, answers=typed, errors=errors)
        try:
            attempt, results = await quizzes.submit_attempt(db, who, quiz.id, answers)
        except Conflict:
            return await self._lesson_page(
                page, db, lesson_id, status=409, answers=typed,
                error=_("You have used every attempt this quiz allows: this answer was not recorded."),
            )
        outline = await _outline(db, who, lesson.course_id)
        standing = await _standing(db, who, lesson.course_id)
        if standing.active and lesson.id not in standing.done:
            await _record(db, page, standing, lesson.id, "lesson_completed")
        standing.done.add(lesson.id)
        outcome = {question_id: correct for question_id, correct, _points in results}
        ordered = outline.ordered
        index = next(i for i, item in enumerate(ordered) if item.id == lesson.id)
        left = max(0, quiz.max_attempts - attempt.number) if quiz.max_attempts else None
        return page.render(
            "learner/quiz_result.html", title=_("Results: %(title)s") % {"title": lesson.title},
            lesson=lesson, outline=outline, quiz=quiz, questions=questions, attempt=attempt, outcome=outcome,
            given=typed, attempts_left=left, next=ordered[index + 1] if index + 1 < len(ordered) else None,
            score_fraction=(attempt.score / attempt.max_score) if attempt.max_score else 0.0,
            course_done=all(item.id in standing.done for item in ordered),
        )

    # -- my courses ---------------------------------------------------------------------------

    @get("/my")
    async def my(self, request: Request[Any, Any, State], db: AsyncSession) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        enrolled, teaching = await courses.my_courses(db, page.who)
        rows = []
        for course in enrolled:
            outline = await _outline(db, page.who, course.id)
            standing = await _standing(db, page.who, course.id)
            fraction = _fraction(outline, standing)
            completed = fraction >= 1.0 or (standing.progress is not None and standing.progress.completed_at is not None)
            rows.append({
                "course": course, "standing": standing, "fraction": 1.0 if completed else fraction,
                "completed": completed, "next": _continue(outline, standing),
                "last_activity": standing.progress.last_activity_at if standing.progress else None,
            })
        return page.render(
            "learner/my.html", title=_("My courses"), rows=rows, teaching=teaching,
            staff=page.who.role in ("instructor", "admin"),
        )

    # -- profile ------------------------------------------------------------------------------

    @get("/profile")
    async def profile(self, request: Request[Any, Any, State], db: AsyncSession, notice: str = "") -> Response[Any]:
        page = await portal(request, db)
        user = await _me(db, page)
        return _profile_page(page, user, user.display_name, user.locale, FormErrors(), _notice(notice))

    @post("/profile", status_code=303)
    async def save_profile(self, request: Request[Any, Any, State], db: AsyncSession) -> Response[Any]:
        page = await portal(request, db)
        form = await request.form()
        page.check_csrf(str(form.get("csrf_token", "")))
        assert page.who is not None
        user = await _me(db, page)
        name = " ".join(str(form.get("display_name", "")).split())
        lang = str(form.get("language", "")).strip()
        errors = FormErrors()
        if not name:
            errors["display_name"] = _("Enter your name.")
        elif len(name) > NAME_MAX:
            errors["display_name"] = _("Your name can have at most %(max)s characters.") % {"max": NAME_MAX}
        if lang not in i18n.LANGUAGES:
            errors["language"] = _("Choose one of the languages in the list.")
        if errors:
            return _profile_page(page, user, name, lang, errors, status=422)
        await db.execute(
            update(User).where(User.campus_id == page.who.campus_id, User.id == page.who.user_id)
            .values(display_name=name, locale=lang)
        )
        page.remember_language(lang)
        return page.redirect("/profile?notice=saved")


async def _me(db: AsyncSession, page: Page) -> User:
    assert page.who is not None
    user = await db.scalar(select(User).where(User.campus_id == page.who.campus_id, User.id == page.who.user_id))
    if user is None:
        raise NotFound("no such user")
    return user


def _profile_page(
    page: Page, user: User, name: str, lang: str, errors: FormErrors, notice: str = "", status: int = 200
) -> Response[Any]:
    return page.render(
        "learner/profile.html", status=status, title=_("Profile"), user=user, name=name, language=lang,
        errors=errors, notice=notice, role=role_name(user.role),
        language_options=list(i18n.LANGUAGES.items()),
    )


async def _attempts_used(db: AsyncSession, who: Identity, quiz_id: uuid.UUID) -> int:
    """How many attempts the learner has made at this quiz (their own rows only)."""
    found = await db.scalar(
        select(func.count()).where(
            Attempt.campus_id == who.campus_id, Attempt.quiz_id == quiz_id, Attempt.user_id == who.user_id
        )
    )
    return int(found or 0)


def _parse_answer(question: Question, values: list[str]) -> Any:
    """The form's strings as the answer the grader expects, or None when they cannot be one."""
    options = len(question.options or [])
    if question.kind in ("single", "multiple"):
        try:
            indexes = sorted({int(v) for v in values})
        except ValueError:
            return None
        if not indexes or any(not 0 <= i < options for i in indexes):
            return None
        if question.kind == "single":
            return indexes[0] if len(indexes) == 1 else None
        return indexes
    if question.kind == "numeric":
        text = values[0].replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")  # a decimal comma (fr, es)
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return values[0][:1000]
