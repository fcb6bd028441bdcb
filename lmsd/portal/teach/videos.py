"""A course's videos: the list with transcoding progress, the lecture upload, a video as a lesson,
and the transcript editor.

The upload is the one part that needs JavaScript: ``static/upload.js`` speaks tus to
``/api/v1/uploads`` with the session cookie and the CSRF header, and resumes after a reload.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from lmsd.courses import service as courses
from lmsd.courses.schemas import MAX_TITLE, LessonIn
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.media import service as media
from lmsd.media.cues import Cue
from lmsd.media.subtitles import MAX_WEBVTT_BYTES, to_webvtt
from lmsd.policy import Identity
from lmsd.portal import forms
from lmsd.portal.forms import FormErrors
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page, PortalPages
from lmsd.portal.teach.common import (
    fill,
    language_label,
    lesson_videos,
    module_in_course,
    notice_of,
    teacher,
    too_long,
    transcript_statuses,
    video_statuses,
)
from lmsd.server.session import DbSession

UPLOAD_CHUNK = 5 * 1024 * 1024
TRANSCRIPT_FORM_LIMIT = 3 * MAX_WEBVTT_BYTES + 64 * 1024


class VideoPages(PortalPages):
    path = "/"

    @get("/teach/courses/{course_id:uuid}/videos")
    async def videos(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        return await _videos_page(page, db, who, course_id)

    @post("/teach/courses/{course_id:uuid}/video-lessons")
    async def add_video_lesson(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        await courses.managed_course(db, who, course_id)
        values = {"video": forms.text(form, "video"), "module": forms.text(form, "module"),
                  "title": forms.text(form, "lesson_title")}
        errors = FormErrors()
        videos = {v.id: v for v in lesson_videos(await media.course_videos(db, who, course_id))}
        video_id = forms.uuid_or_none(values["video"])
        if video_id is None or video_id not in videos:
            errors["video"] = _("Choose one of this course's videos.")
        module_id = forms.uuid_or_none(values["module"])
        if not await module_in_course(db, who, module_id, course_id):
            errors["module"] = _("Choose the module the lesson goes in.")
        if len(values["title"]) > MAX_TITLE:
            errors["lesson_title"] = too_long(MAX_TITLE)
        if errors:
            return await _videos_page(page, db, who, course_id, status=422, errors=errors, values=values)
        assert video_id is not None and module_id is not None
        title = values["title"] or videos[video_id].title
        lesson = await courses.create_lesson(db, who, module_id, LessonIn(title=title, kind="video", video_id=video_id))
        return page.redirect(f"/teach/courses/{course_id}?notice=lesson-added#lesson-{lesson.id}")

    @get("/teach/videos/{video_id:uuid}/transcript")
    async def transcript(
        self, request: Request[Any, Any, State], db: DbSession, video_id: uuid.UUID, notice: str | None = None
    ) -> Response[Any]:
        page, who = await teacher(request, db)
        return await _transcript_page(page, db, who, video_id, notice=notice_of(notice))

    @post("/teach/videos/{video_id:uuid}/transcript", request_max_body_size=TRANSCRIPT_FORM_LIMIT)
    async def save_transcript(self, request: Request[Any, Any, State], db: DbSession, video_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        form = await forms.read(page, request)
        text = forms.text(form, "webvtt", strip=False)
        try:
            await media.publish_transcript(db, who, page.settings, video_id, None, text)
        except Invalid as exc:  # the parser's reason names the line
            errors = FormErrors(webvtt=fill(_("This is not a valid WebVTT transcript: %(reason)s"), reason=str(exc)))
            return await _transcript_page(page, db, who, video_id, status=422, errors=errors, text=text)
        return page.redirect(f"/teach/videos/{video_id}/transcript?notice=transcript-saved")

    @post("/teach/videos/{video_id:uuid}/transcribe")
    async def transcribe(self, request: Request[Any, Any, State], db: DbSession, video_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        await forms.read(page, request)
        try:
            await media.request_transcription(db, who, page.settings, video_id, None)
        except Conflict as exc:
            return await _transcript_page(
                page, db, who, video_id, status=409,
                message=fill(_("The video cannot be transcribed now: %(reason)s"), reason=str(exc)),
            )
        return page.redirect(f"/teach/videos/{video_id}/transcript?notice=transcribing")


async def _videos_page(
    page: Page,
    db: DbSession,
    who: Identity,
    course_id: uuid.UUID,
    *,
    status: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response[Any]:
    course = await courses.managed_course(db, who, course_id)
    videos = await media.course_videos(db, who, course_id)
    _course, _people, modules, _lessons = await courses.outline(db, who, course_id)
    return page.render(
        "teach/videos.html", status=status, title=fill(_("Videos: %(course)s"), course=course.title), course=course,
        videos=videos, lesson_videos=lesson_videos(videos), modules=modules, errors=errors or FormErrors(),
        values=values or {"video": "", "module": "", "title": ""}, video_statuses=video_statuses(),
        transcript_statuses=transcript_statuses(), chunk_size=UPLOAD_CHUNK,
        accept=",".join(page.settings.media.allowed_types), section="videos",
    )


async def _transcript_page(
    page: Page,
    db: DbSession,
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
    course = await courses.managed_course(db, who, video.course_id)
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
        "teach/transcript.html", status=status, title=fill(_("Transcript: %(video)s"), video=video.title), video=video,
        course=course, text=text, revision=revision, source=source, errors=errors or FormErrors(), notice=notice,
        message=message, language=language_label(video.language), transcript_statuses=transcript_statuses(),
        video_statuses=video_statuses(), section="videos",
    )
