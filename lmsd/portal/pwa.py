"""Portal: the installable web app: manifest, service worker, offline page, offline progress.

- ``GET /manifest.webmanifest``: the web app manifest (campus name, icons, start at /my).
- ``GET /sw.js``: the service worker (source: ``templates/pwa/sw.js``), served from the root so
  its scope is the whole portal; its cache names carry a hash of the release and of the files it
  precaches, so a new release replaces the old caches.
- ``GET /offline``: the offline page (lists the lessons saved on this device; portal.js reads
  them from the cache). The service worker precaches it without the session
  (``X-Lmsd-Precache: 1``): no token of one person stays on a shared computer.
- ``GET /offline/messages.json?lang=xx``: the strings portal.js shows, translated.
- ``GET /offline/ping``: 204, never cached: portal.js polls it while a page is offline.
- ``POST /offline/progress``: the queue of lesson completions made offline, sent by portal.js
  when back online. Each event carries the client's id, which becomes the event id: a queue sent
  again records nothing twice. JSON in and out (problem+json errors), the session cookie plus the
  page's ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State

import lmsd
from lmsd.courses.service import get_lesson
from lmsd.enrolments.service import active_enrolment_id
from lmsd.errors import Forbidden, LmsdError, NotFound, Unauthorized
from lmsd.learning import service as learning
from lmsd.learning.schemas import ActivityBatch, ActivityIn
from lmsd.portal import i18n
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import CSP, CSRF_HEADER, Page, PortalPages, check_csrf, portal, session_of
from lmsd.portal.static_files import asset_url
from lmsd.server.errors import domain_error, problem
from lmsd.server.session import DbSession

PORTAL_DIR = Path(__file__).resolve().parent
SW_SOURCE = PORTAL_DIR / "templates" / "pwa" / "sw.js"
THEME = "#1d4f91"
BACKGROUND = "#ffffff"
ICONS = [  # (file under static/icons, size, purpose)
    ("icon-192.png", 192, "any"),
    ("icon-512.png", 512, "any"),
    ("maskable-192.png", 192, "maskable"),
    ("maskable-512.png", 512, "maskable"),
]
SAVED_CACHE = "lmsd-saved-lessons"  # not versioned: a release keeps what learners saved
MAX_EVENTS = 100
PRECACHE_HEADER = "x-lmsd-precache"


class OfflineEvent(msgspec.Struct, forbid_unknown_fields=True):
    """One completion the learner made offline, as portal.js queued it."""

    id: uuid.UUID  # made by the browser (crypto.randomUUID); becomes the event id
    lesson_id: uuid.UUID
    type: Literal["lesson_completed"]
    occurred_at: datetime  # when the learner pressed the button, offline


def messages() -> dict[str, str]:
    """What portal.js shows, in the current language."""
    return {
        "offline": _("You are offline — saved lessons are available"),
        "savedLessons": _("Saved lessons"),
        "saved": _("Saved for offline reading"),
        "remove": _("Remove from offline"),
        "removed": _("Removed from offline reading"),
        "saveFailed": _("This lesson could not be saved for offline reading."),
        "queued": _("Saved; it will be sent when you are back online"),
        "sent": _("Your progress made offline has been recorded."),
    }


def _precache() -> list[str]:
    """URLs the worker fetches at install, each with its content hash (asset_url)."""
    urls = [asset_url("portal.css"), asset_url("portal.js"), "/favicon.ico"]
    urls += [asset_url(f"icons/{name}") for name, _size, _purpose in ICONS]
    urls += [f"/offline/messages.json?lang={lang}" for lang in i18n.LANGUAGES]
    return urls


@cache
def _release_hash(source: str, precache: tuple[str, ...], catalogs: tuple[tuple[str, int], ...]) -> str:
    digest = hashlib.sha256(lmsd.__version__.encode())
    digest.update(source.encode())
    digest.update("\n".join(precache).encode())
    for name, mtime_ns in catalogs:
        digest.update(f"{name}:{mtime_ns}".encode())
        digest.update((PORTAL_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def service_worker() -> str:
    """The worker's script: its configuration, then its source."""
    source = SW_SOURCE.read_text(encoding="utf-8")
    precache = _precache()
    # the offline page and the strings are precached: their sources change the release hash too
    files = [PORTAL_DIR / "templates" / "pwa" / "offline.html", *sorted((PORTAL_DIR / "locale").glob("*/LC_MESSAGES/*.po"))]
    catalogs = tuple((str(f.relative_to(PORTAL_DIR)), f.stat().st_mtime_ns) for f in files)
    config = {
        "version": _release_hash(source, tuple(precache), catalogs),
        "precache": precache,
        "offline": "/offline",
        "saved": SAVED_CACHE,
    }
    return f"const CONFIG = {json.dumps(config)};\n{source}"


def manifest(campus_name: str, lang: str) -> dict[str, Any]:
    return {
        "id": "/",
        "name": campus_name,
        "short_name": campus_name,
        "lang": lang,
        "dir": "ltr",
        "start_url": "/my",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME,
        "background_color": BACKGROUND,
        "icons": [
            {"src": asset_url(f"icons/{name}"), "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}
            for name, size, purpose in ICONS
        ],
    }


def _checked_events(body: bytes) -> list[OfflineEvent]:
    """The queue sent, validated whole: one bad event refuses all (nothing recorded)."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise BadBody(400, "Invalid request", "the body is not JSON") from None
    if not isinstance(raw, dict) or set(raw) != {"events"} or not isinstance(raw["events"], list):
        raise BadBody(400, "Invalid request", 'the body is {"events": [...]} and nothing else')
    items = raw["events"]
    if not 1 <= len(items) <= MAX_EVENTS:
        raise BadBody(422, "Invalid input", f"send 1 to {MAX_EVENTS} events per request (got {len(items)})")
    events, seen = [], set()
    now = datetime.now(UTC)
    for index, item in enumerate(items):
        event_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
        try:
            event = msgspec.json.decode(msgspec.json.encode(item), type=OfflineEvent)
        except msgspec.ValidationError as exc:
            raise BadBody(422, "Invalid input", f"events[{index}]: {exc}", event_id) from None
        if event.occurred_at.tzinfo is None:
            raise BadBody(422, "Invalid input", f"events[{index}]: occurred_at needs a time zone", event_id)
        if not learning.EARLIEST <= event.occurred_at <= now + learning.FUTURE_SLACK:
            raise BadBody(422, "Invalid input", f"events[{index}]: occurred_at is in the future or before 2000", event_id)
        if event.id in seen:
            raise BadBody(422, "Invalid input", f"events[{index}]: the id {event.id} is in the batch twice", event_id)
        seen.add(event.id)
        events.append(event)
    return events


class BadBody(Exception):
    """A problem+json answer; ``event_id`` names the queued event that was refused, so the
    browser drops that one and sends the others again."""

    def __init__(self, status: int, title: str, detail: str, event_id: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.event_id = status, title, detail, event_id

    def response(self) -> Response[Any]:
        extra = {"event_id": self.event_id} if self.event_id else {}
        return problem(self.status, self.title, self.detail, **extra)


class PwaPages(PortalPages):
    path = "/"

    @get("/manifest.webmanifest")
    async def manifest(self, request: Request[Any, Any, State], db: DbSession) -> Response[bytes]:
        page = await portal(request, db, required=False)
        body = msgspec.json.encode(manifest(page.campus.name, page.lang))
        return Response(
            body, media_type="application/manifest+json",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Content-Language": page.lang},
        )

    @get("/sw.js")
    async def service_worker(self) -> Response[str]:
        return Response(
            service_worker(), media_type="text/javascript",
            headers={
                "Service-Worker-Allowed": "/", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": CSP,
            },
        )

    @get("/offline")
    async def offline(self, request: Request[Any, Any, State], db: DbSession) -> Response[str]:
        """The offline page; the worker's copy is made without the session (no token in it)."""
        page = await portal(request, db, required=False)
        if request.headers.get(PRECACHE_HEADER):
            page = Page(request, None, "", page.lang, page.campus)
        response = page.render("pwa/offline.html", title=_("Offline reading"))
        response.headers["Content-Language"] = page.lang
        return response

    @get("/offline/ping", status_code=204)
    async def ping(self) -> Response[None]:
        """portal.js asks this (never cached) to learn that the connection is back."""
        return Response(None, status_code=204, headers={"Cache-Control": "no-store"})

    @get("/offline/messages.json")
    async def strings(self, lang: str = "") -> Response[dict[str, str]]:
        i18n.activate(i18n.supported(lang) or i18n.DEFAULT)
        return Response(messages(), headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @post("/offline/progress", status_code=200)
    async def progress(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        """Record the learner's offline queue of completions; ``{"accepted", "duplicates"}``."""
        try:
            found = session_of(request)
            if found is None:
                raise Unauthorized("sign in first")
            who, token = found
            check_csrf(request, token, request.headers.get(CSRF_HEADER, ""))
            events = _checked_events(await request.body())
            enrolments: dict[uuid.UUID, uuid.UUID] = {}  # lesson -> the learner's active enrolment
            for event in events:
                if event.lesson_id in enrolments:
                    continue
                try:
                    lesson = await get_lesson(db, who, event.lesson_id)
                except (NotFound, Forbidden):  # another campus's, or a course the learner may not read
                    raise BadBody(404, "Not found", f"no such lesson {event.lesson_id}", str(event.id)) from None
                enrolment = await active_enrolment_id(db, who, lesson.course_id)
                if enrolment is None:
                    raise BadBody(404, "Not found", f"you have no active enrolment in the course of lesson {event.lesson_id}", str(event.id))
                enrolments[event.lesson_id] = enrolment
            batch = ActivityBatch(events=[
                ActivityIn(enrolment_id=enrolments[e.lesson_id], type=e.type, lesson_id=e.lesson_id,
                           occurred_at=e.occurred_at, id=e.id)
                for e in events
            ])
            accepted = await learning.record_activity(db, who, batch, MAX_EVENTS)
        except BadBody as exc:  # a 4xx: the request's unit of work rolls back whatever was written
            return exc.response()
        except LmsdError as exc:
            return domain_error(request, exc)
        return Response({"accepted": accepted.accepted, "duplicates": accepted.duplicates})


__all__ = ["PwaPages", "manifest", "messages", "service_worker"]
