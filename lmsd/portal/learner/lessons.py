"""The learner's lesson pages: a lesson of any kind, "Mark as complete", a quiz attempt.

- opening a lesson records ``lesson_started`` once, the first time (when the projection has no
  start for it yet), so "last opened" is known;
- "Mark as complete" (text and video lessons) records ``lesson_completed``;
- submitting a quiz attempt records the quiz's own events; the projection completes the quiz
  lesson with the graded attempt (the same rule for the API);
- "Continue" goes to the first lesson, in outline order, that is not completed, or to the last
  lesson opened when all are.
"""

from __future__ import annotations

import math
import uuid
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import State

from lmsd import policy
from lmsd.courses import service as courses
from lmsd.errors import Conflict, NotFound
from lmsd.media import service as media
from lmsd.portal.i18n import gettext as _
from lmsd.portal.learner.common import Outline, Standing, kind_name, notice, outline_of, record, standing_of
from lmsd.portal.markdown import render as render_markdown
from lmsd.portal.pages import FormErrors, Page, PortalPages, portal
from lmsd.portal.player import Transcoding, WatchPage, render_watch_page
from lmsd.quizzes import service as quizzes
from lmsd.server.session import DbSession


class LessonPages(PortalPages):
    path = "/"

    @get("/lessons/{lesson_id:uuid}")
    async def lesson(
        self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID, notice: str = ""
    ) -> Response[Any]:
        page = await portal(request, db)
        return await _lesson_page(page, db, lesson_id, notice=_notice(notice))

    @post("/lessons/{lesson_id:uuid}/complete", status_code=303)
    async def complete(self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID) -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        page.check_csrf(str((await request.form()).get("csrf_token", "")))
        lesson = await courses.get_lesson(db, page.who, lesson_id)
        outline = await outline_of(db, page.who, lesson.course_id)
        standing = await standing_of(db, page.who, lesson.course_id)
        if not standing.active:
            return page.redirect(f"/lessons/{lesson_id}?notice=preview")
        await record(db, page, standing, lesson.id, "lesson_completed")
        standing.done.add(lesson.id)
        return page.redirect(_after(outline, standing, lesson.id))

    @post("/lessons/{lesson_id:uuid}/quiz")
    async def quiz(self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID) -> Response[Any]:
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
            parsed = parse_answer(question.kind, len(question.options or []), values)
            if parsed is None:
                errors[name] = (
                    _("Question %(number)s: enter a number, such as 2.5.") if question.kind == "numeric"
                    else _("Question %(number)s: choose one of the options.")
                ) % {"number": number}
                continue
            answers[str(question.id)] = parsed
        if not policy.allowed(who, "quiz.attempt", rel):
            return await _lesson_page(
                page, db, lesson_id, status=403, answers=typed,
                error=_("Only learners enrolled in this course can submit this quiz."),
            )
        if errors:
            return await _lesson_page(page, db, lesson_id, status=422, answers=typed, errors=errors)
        try:
            attempt, results = await quizzes.submit_attempt(db, who, quiz.id, answers)
        except Conflict:
            return await _lesson_page(
                page, db, lesson_id, status=409, answers=typed,
                error=_("You have used every attempt this quiz allows: this answer was not recorded."),
            )
        outline = await outline_of(db, who, lesson.course_id)
        standing = await standing_of(db, who, lesson.course_id)
        # The graded attempt completes the lesson: the learning projection decides it, whatever the
        # entry point (docs/events.md); the page only shows the outcome it will reach.
        standing.done.add(lesson.id)
        outcome = {question_id: correct for question_id, correct, _points in results}
        ordered = outline.ordered
        index = outline.index_of(lesson.id)
        left = max(0, quiz.max_attempts - attempt.number) if quiz.max_attempts else None
        return page.render(
            "learner/quiz_result.html", title=_("Results: %(title)s") % {"title": lesson.title},
            lesson=lesson, outline=outline, quiz=quiz, questions=questions, attempt=attempt, outcome=outcome,
            given=typed, attempts_left=left, next=ordered[index + 1] if index + 1 < len(ordered) else None,
            score_fraction=(attempt.score / attempt.max_score) if attempt.max_score else 0.0,
            course_done=all(item.id in standing.done for item in ordered),
        )


_notice = notice  # the handler's query parameter is called notice too


async def _lesson_page(
    page: Page, db: DbSession, lesson_id: uuid.UUID, *, notice: str = "", status: int = 200,
    answers: dict[str, Any] | None = None, errors: FormErrors | None = None, error: str = "",
) -> Response[Any]:
    assert page.who is not None
    who = page.who
    lesson = await courses.get_lesson(db, who, lesson_id)  # 404 elsewhere, 403 when not enrolled
    outline = await outline_of(db, who, lesson.course_id)
    standing = await standing_of(db, who, lesson.course_id)
    if standing.active and lesson.id not in standing.started and lesson.id not in standing.done:
        await record(db, page, standing, lesson.id, "lesson_started")
    ordered = outline.ordered
    index = outline.index_of(lesson.id)
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
        player = await _player(page, db, lesson)
        values["player"] = player.body
        csp = player.csp
    elif lesson.kind == "quiz" and lesson.quiz_id is not None:
        quiz, questions, rel = await quizzes.load_quiz(db, who, lesson.quiz_id)
        used = await quizzes.attempts_used(db, who, quiz.id)
        values.update(
            quiz=quiz, questions=questions, answers=answers or {}, errors=errors or FormErrors(),
            may_attempt=policy.allowed(who, "quiz.attempt", rel),
            attempts_used=used, attempts_left=(max(0, quiz.max_attempts - used) if quiz.max_attempts else None),
        )
    return page.render("learner/lesson.html", status=status, csp=csp, title=lesson.title, **values)


def media_origins(page: Page) -> list[str]:
    """The origins of the media pathways (a CDN), which the player's CSP must allow."""
    return sorted({f"{u.scheme}://{u.netloc}" for u in (urlsplit(p.base_url) for p in page.settings.media.pathways)})


async def _player(page: Page, db: DbSession, lesson: Any) -> WatchPage:
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
        thumbnails_vtt_url=grant.thumbnails_url or None, media_origins=media_origins(page),
    )


def _after(outline: Outline, standing: Standing, lesson_id: uuid.UUID) -> str:
    """Where to go once a lesson is done: the next lesson not done yet, else the course."""
    ordered = outline.ordered
    index = outline.index_of(lesson_id)
    for item in ordered[index + 1:] + ordered[:index]:
        if item.id not in standing.done:
            return f"/lessons/{item.id}?notice=completed"
    return f"/courses/{outline.course.id}?notice=course-done"


def parse_answer(kind: str, options: int, values: list[str]) -> Any:
    """The form's strings as the answer the grader expects, or None when they cannot be one."""
    if kind in ("single", "multiple"):
        try:
            indexes = sorted({int(v) for v in values})
        except ValueError:
            return None
        if not indexes or any(not 0 <= i < options for i in indexes):
            return None
        if kind == "single":
            return indexes[0] if len(indexes) == 1 else None
        return indexes
    if kind == "numeric":
        text = values[0].replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")  # a decimal comma (fr, es)
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return values[0][:1000]
