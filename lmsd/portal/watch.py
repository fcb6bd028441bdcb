"""The watch page of a video lesson (``/watch/<lesson id>``), for the signed-in portal session.

The page plays the lesson's video with hls.js (static/player.js) from a signed playback grant,
shows the transcoding progress while there is none yet, and reports the ranges the learner
watched to ``/watch/<lesson id>/progress``, which records them as a ``video_watched`` learning
event of the learner's enrolment. Cookie sessions are protected against CSRF twice: the
request must come from the portal's origin and carry a token derived from the session.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Body
from litestar.response import Redirect

from lmsd.courses.service import get_lesson
from lmsd.enrolments import service as enrolments
from lmsd.errors import Forbidden, Invalid, NotFound
from lmsd.learning import service as learning
from lmsd.learning.schemas import ActivityBatch, ActivityIn
from lmsd.media import service as media
from lmsd.policy import Identity
from lmsd.portal.pages import CSRF_HEADER, check_csrf, csrf_token, session_of
from lmsd.portal.player import Transcoding, render_watch_page
from lmsd.server.session import DbSession

MAX_RANGES = 500


class WatchedRanges(msgspec.Struct):
    segments: Annotated[list[tuple[float, float]], msgspec.Meta(max_length=MAX_RANGES)] = []
    position_s: float = 0.0
    duration_s: float = 0.0
    csrf_token: str = ""  # only when the browser had to fall back to sendBeacon (no headers)


async def _video_lesson(db: DbSession, who: Identity, lesson_id: uuid.UUID) -> tuple[Any, uuid.UUID]:
    lesson = await get_lesson(db, who, lesson_id)
    if lesson.kind != "video" or lesson.video_id is None:
        raise NotFound("this lesson has no video")
    return lesson, lesson.video_id


def _not_found(status: int = 404) -> Response[str]:
    return Response(
        "<!doctype html><title>Not found</title><p>There is no such lesson here.</p>",
        status_code=status, media_type="text/html", headers={"Content-Security-Policy": "default-src 'none'"},
    )


class WatchController(Controller):
    path = "/watch"
    include_in_schema = False

    @get("/{lesson_id:uuid}")
    async def page(self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID) -> Response[Any]:
        found = session_of(request)
        if found is None:
            return Redirect("/", status_code=303)
        who, token = found
        app = request.app.state
        try:
            lesson, video_id = await _video_lesson(db, who, lesson_id)
            video = await media.get_video(db, who, video_id)
        except (NotFound, Forbidden):
            return _not_found()  # a lesson of another campus or course is not there, not forbidden
        csrf = csrf_token(app.secrets.session_secret, token)
        progress_url = f"/watch/{lesson_id}/progress"
        origins = sorted({f"{u.scheme}://{u.netloc}" for u in (urlsplit(p.base_url) for p in app.settings.media.pathways)})
        if video.status != "ready":
            page = render_watch_page(
                title=lesson.title, master_url="", progress_url=progress_url, csrf_token=csrf,
                transcoding=Transcoding(percent=video.progress, status_url=f"/watch/{lesson_id}/status"),
            )
        else:
            grant = await media.playback(db, who, app.settings, app.secrets, video_id, media.now())
            page = render_watch_page(
                title=lesson.title, master_url=grant.master_url, progress_url=progress_url, csrf_token=csrf,
                poster_url=grant.poster_url or None, captions=True, language=video.language,
                thumbnails_vtt_url=grant.thumbnails_url or None, media_origins=origins,
            )
        return Response(
            page.html, media_type="text/html",
            headers={"Content-Security-Policy": page.csp, "Cache-Control": "private, no-store",
                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"},
        )

    @get("/{lesson_id:uuid}/status")
    async def status(self, request: Request[Any, Any, State], db: DbSession, lesson_id: uuid.UUID) -> Response[Any]:
        found = session_of(request)
        if found is None:
            raise Forbidden("sign in first")
        _, video_id = await _video_lesson(db, found[0], lesson_id)
        video = await media.get_video(db, found[0], video_id)
        state = {"uploaded": "queued"}.get(video.status, video.status)
        return Response(
            {"state": state, "percent": video.progress, "detail": video.error},
            headers={"Cache-Control": "no-store"},
        )

    @post("/{lesson_id:uuid}/progress", status_code=204)
    async def progress(
        self,
        request: Request[Any, Any, State],
        db: DbSession,
        lesson_id: uuid.UUID,
        data: Annotated[WatchedRanges, Body()],
    ) -> None:
        """Watched ranges in seconds → one ``video_watched`` event of the learner's enrolment.
        Staff previewing a lesson record nothing."""
        found = session_of(request)
        if found is None:
            raise Forbidden("sign in first")
        who, token = found
        check_csrf(request, token, request.headers.get(CSRF_HEADER) or data.csrf_token)
        lesson, _ = await _video_lesson(db, who, lesson_id)
        segments = [(int(a * 1000), int(b * 1000)) for a, b in data.segments if b > a >= 0]
        if not segments:
            if data.segments:
                raise Invalid("segments are [start_s, end_s] pairs with 0 <= start < end")
            return
        enrolment = await enrolments.active_enrolment_id(db, who, lesson.course_id)
        if enrolment is None:
            return
        batch = ActivityBatch(events=[
            ActivityIn(enrolment_id=enrolment, type="video_watched", lesson_id=lesson_id, segments=segments)
        ])
        await learning.record_activity(db, who, batch, request.app.state.settings.events.max_batch)
