"""What the instructor's pages share: who may open them, labels and notices, language choices."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from babel import Locale
from litestar import Request
from litestar.datastructures import State

from lmsd.courses import service as courses
from lmsd.errors import Forbidden, NotFound
from lmsd.media.schemas import VideoOut
from lmsd.policy import Identity
from lmsd.portal import i18n
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page, portal
from lmsd.server.session import DbSession

# The course languages offered in the select (any valid tag is accepted; a course's own is added).
COMMON_LANGUAGES = (
    "ar", "ca", "cs", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "hu", "id", "it", "ja", "ko",
    "nl", "no", "pl", "pt", "pt-BR", "ro", "ru", "sv", "th", "tr", "uk", "vi", "zh",
)


class LessonView(Protocol):
    """What the lesson page reads of a lesson (the courses service's)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def course_id(self) -> uuid.UUID: ...
    @property
    def module_id(self) -> uuid.UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def video_id(self) -> uuid.UUID | None: ...


async def teacher(request: Request[Any, Any, State], db: DbSession) -> tuple[Page, Identity]:
    """The page of a signed-in instructor or admin; anyone else gets the 403 page."""
    page = await portal(request, db)
    who = page.who
    assert who is not None
    if who.role not in ("instructor", "admin"):
        raise Forbidden("only instructors and campus admins teach")
    return page, who


async def module_in_course(db: DbSession, who: Identity, module_id: uuid.UUID | None, course_id: uuid.UUID) -> bool:
    """Whether ``module_id`` (a form's choice) names a module of this course."""
    if module_id is None:
        return False
    try:
        module, _rel = await courses.load_module(db, who, module_id)
    except NotFound:
        return False
    return module.course_id == course_id


def fill(message: str, **values: Any) -> str:
    """A translated message with its ``%(name)s`` placeholders filled in."""
    return message % values


def too_long(limit: int) -> str:
    """The message under a title field longer than the schema allows."""
    return fill(_("The title is too long: at most %(limit)s characters."), limit=i18n.fmt_number(limit))


def lesson_videos(videos: list[VideoOut], keep: uuid.UUID | None = None) -> list[VideoOut]:
    """Videos a lesson may show: ready or still being processed (and the lesson's own)."""
    return [v for v in videos if v.status != "failed" or v.id == keep]


# -- labels (translated when a page is rendered) -------------------------------------------------
def course_statuses() -> dict[str, str]:
    return {"draft": _("Draft"), "published": _("Published"), "archived": _("Archived")}


def lesson_kinds() -> dict[str, str]:
    return {"text": _("Text"), "video": _("Video"), "quiz": _("Quiz")}


def video_statuses() -> dict[str, str]:
    return {
        "uploaded": _("Waiting to be transcoded"), "transcoding": _("Transcoding"), "ready": _("Ready"),
        "failed": _("Failed"),
    }


def transcript_statuses() -> dict[str, str]:
    return {
        "pending": _("Transcription in progress"), "ready": _("Transcript ready"),
        "failed": _("Transcription failed"), "off": _("Automatic transcription is off"),
    }


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


def notice_of(code: str | None) -> str:
    """The message a redirect's ``?notice=`` asks for ("" for none or an unknown one)."""
    return _notices().get(code or "", "")


def language_label(tag: str) -> str:
    """A language tag's name in the page's language (the tag itself when Babel does not know it)."""
    try:
        name = Locale.parse(tag, sep="-").get_display_name(i18n.current())
    except (ValueError, TypeError):
        return tag
    return f"{name[:1].upper()}{name[1:]}" if name else tag


def language_options(current: str = "") -> list[tuple[str, str]]:
    codes = list(COMMON_LANGUAGES)
    if current and current not in codes:
        codes.append(current)
    return sorted(((code, language_label(code)) for code in codes), key=lambda item: item[1].casefold())
