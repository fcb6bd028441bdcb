"""What the portal's forms share: reading a posted form, the messages shown next to its fields,
and a domain error shown by its ``code`` next to its ``field``.

A handler that changes something reads the form with :func:`read` (which checks the page's CSRF
token), takes its values with :func:`text`, :func:`flag` and :func:`uuid_or_none`, checks them
(a message per field in a :class:`FormErrors`), calls the service, and when the service refuses
the input, shows the refusal where it belongs::

    except LmsdError as exc:
        if not errors.show(exc, {"code": "code", "title": "title"}):
            raise  # not about this form's input: the error page

:meth:`FormErrors.show` puts the translated message of ``exc.code`` (the table :data:`MESSAGES`)
next to the form field that ``exc.field`` names. A code the table does not know shows the
error's own (English) message after a translated "This value is not accepted". Messages are
never parsed: add a code to :data:`MESSAGES` (and its translations to the ``forms.po``
catalogs) when a page should say something better; a message that names a limit
(``%(limit)s``) takes it from the service's constant (:data:`LIMITS`), never a copy.

To convert form values into a service's input struct, check them first; :func:`convert` is the
last guard and maps a msgspec validation error to its field by the error's path (``$.title``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request
from litestar.datastructures import FormMultiDict, State

from lmsd.campuses import service as campuses
from lmsd.errors import LmsdError
from lmsd.identity import service as identity
from lmsd.identity import sso
from lmsd.portal.i18n import fmt_number, gettext

if TYPE_CHECKING:
    from lmsd.portal.pages import Page

T = TypeVar("T")


def N_(message: str) -> str:
    """Marks a msgid for the catalogs; it is translated where it is shown."""
    return message


# A domain error's code → what the portal says instead of the error's (English) message. Codes
# are the services' (lmsd.errors, ``code=``); the texts are msgids, translated in
# lmsd/portal/locale/<lang>/LC_MESSAGES/forms.po.
MESSAGES: dict[str, str] = {
    # courses and their outline
    "course.code_taken": N_("A course with this code already exists on this campus: choose another code."),
    "lesson.video_missing": N_("A video lesson needs a video: choose one (upload it on the Videos page first)."),
    "lesson.quiz_missing": N_("A quiz lesson needs a quiz: choose one."),
    "lesson.video_unknown": N_("Choose one of this course's videos."),
    # enrolments
    "enrolment.email_required": N_("Enter the person's e-mail address."),
    "enrolment.unknown_email": N_("Nobody on this campus has this e-mail address."),
    "enrolment.exists": N_("This person is already enrolled in the course."),
    # accounts (identity.user_problems, set_role)
    "user.email_missing": N_("Enter an e-mail address."),
    "user.email_invalid": N_("Enter an e-mail address like name@example.org."),
    "user.email_taken": N_("An account with this e-mail address already exists."),
    "user.display_name_missing": N_("Enter the person's name."),
    "user.display_name_too_long": N_("A name may have at most %(limit)s characters."),
    "user.role_unknown": N_("Choose a role from the list."),
    "user.own_admin_role": N_("You cannot remove your own administrator role. Another administrator has to do it."),
    "user.password_too_short": N_("A password needs at least %(limit)s characters."),
    "user.password_too_long": N_("A password may have at most %(limit)s characters."),
    # a campus's settings and logo (campuses.update_branding, set_logo)
    "campus.name_missing": N_("Enter the campus name."),
    "campus.name_too_long": N_("A name may have at most %(limit)s characters."),
    "campus.locale_unknown": N_("Choose one of the languages in the list."),
    "campus.logo_too_large": N_("The image is too large: at most %(limit)s KiB."),
    "campus.logo_type": N_("This file is not a PNG, JPEG, WebP or SVG image."),
    "campus.logo_unsafe": N_("This SVG contains scripts or event handlers, which a logo may not have."),
    # sign-in providers (sso.provider_problems)
    "sso.slug_missing": N_("Enter a short name for the address (like university)."),
    "sso.slug_length": N_("Use lowercase letters, digits and hyphens only, at most %(limit)s."),
    "sso.slug_invalid": N_("Use lowercase letters, digits and hyphens only, at most %(limit)s."),
    "sso.slug_taken": N_("This campus already has a provider with this short name."),
    "sso.name_missing": N_("Enter the name shown on the sign-in button."),
    "sso.name_length": N_("A name may have at most %(limit)s characters."),
    "sso.issuer_missing": N_("Enter the issuer URL of the identity provider."),
    "sso.issuer_length": N_("The issuer must be an https:// URL."),
    "sso.issuer_not_https": N_("The issuer must be an https:// URL."),
    "sso.client_id_missing": N_("Enter the client ID the identity provider gave you."),
    "sso.client_id_length": N_("At most %(limit)s characters."),
    "sso.client_secret_missing": N_("Enter the client secret the identity provider gave you."),
    "sso.client_secret_length": N_("At most %(limit)s characters."),
    "sso.scopes_length": N_("At most %(limit)s characters."),
    "sso.scopes_openid": N_("The scopes must include openid."),
    "sso.role_unknown": N_("Choose a role from the list."),
}
# The limit a message of :data:`MESSAGES` names (``%(limit)s``): the services' own constants.
LIMITS: dict[str, int] = {
    "user.display_name_too_long": identity.DISPLAY_NAME_MAX,
    "user.password_too_short": identity.PASSWORD_MIN,
    "user.password_too_long": identity.PASSWORD_MAX,
    "campus.name_too_long": campuses.NAME_MAX,
    "campus.logo_too_large": campuses.LOGO_MAX_BYTES // 1024,
    "sso.slug_length": sso.SLUG_MAX,
    "sso.slug_invalid": sso.SLUG_MAX,
    "sso.name_length": sso.NAME_MAX,
    "sso.client_id_length": sso.TEXT_MAX,
    "sso.client_secret_length": sso.TEXT_MAX,
    "sso.scopes_length": sso.TEXT_MAX,
}
NOT_ACCEPTED = N_("This value is not accepted: %(reason)s")
_PATH = re.compile(r"`\$\.([A-Za-z_][A-Za-z0-9_]*)")


def message_for(exc: LmsdError) -> str:
    """The translated message for a domain error: by its code, else its own message."""
    known = MESSAGES.get(exc.code)
    if known is not None and exc.code in LIMITS:
        return gettext(known) % {"limit": fmt_number(LIMITS[exc.code])}
    if known is not None:
        return gettext(known)
    return gettext(NOT_ACCEPTED) % {"reason": str(exc)}


class FormErrors(dict[str, str]):
    """Form field name → the message shown under it (already translated). Empty: no error."""

    def show(self, exc: LmsdError, fields: Mapping[str, str] | Iterable[str], default: str | None = None) -> bool:
        """Show ``exc`` under the form field its ``field`` names. ``fields`` maps the services'
        field names to this form's (a list: the same names); an error about no field of this
        form goes under ``default``. Returns False (nothing shown) when there is no such field
        and no default: the caller re-raises, and the error page says what went wrong."""
        names = fields if isinstance(fields, Mapping) else {name: name for name in fields}
        where = names.get(exc.field or "", default)
        if where is None:
            return False
        self[where] = message_for(exc)
        return True


def field_of(exc: msgspec.ValidationError) -> str | None:
    """The top-level field a msgspec validation error is about, from its path (``$.title``)."""
    found = _PATH.search(str(exc))
    return found.group(1) if found else None


def convert(data: Mapping[str, Any], kind: type[T], errors: FormErrors, fields: Mapping[str, str] | None = None) -> T | None:
    """``data`` as a ``kind`` struct; None, with a message under the field at fault (by the error's
    path, renamed by ``fields``), when msgspec refuses it. Check the values before: this is the
    last guard, its message is generic."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        name = field_of(exc) or ""
        errors[(fields or {}).get(name, name) or "form"] = gettext(NOT_ACCEPTED) % {"reason": str(exc)}
        return None


def valid(value: Any, kind: Any) -> bool:
    """Whether msgspec accepts ``value`` as ``kind`` (a schema's annotated type: ``Code``, ``Lang``)."""
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


async def read(page: Page, request: Request[Any, Any, State]) -> FormMultiDict:
    """The posted form, refused (403) unless it carries this session's CSRF token."""
    form = await request.form()
    page.check_csrf(str(form.get("csrf_token", "")))
    return form


def text(form: FormMultiDict, name: str, *, strip: bool = True) -> str:
    """A text field's value ("" when absent), without surrounding blanks unless ``strip=False``."""
    value = str(form.get(name, "") or "")
    return value.strip() if strip else value


def flag(form: FormMultiDict, name: str) -> bool:
    """A checkbox: ticked or not."""
    return form.get(name) in ("on", "true", "1")


def uuid_or_none(value: str) -> uuid.UUID | None:
    """A chosen id (a select's value), or None when it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
