"""What every portal page shares: the session, the language, CSRF, templates and HTML errors.

A page handler is a method of a :class:`PortalPages` controller. It starts with
``page = await portal(request, db)`` (which redirects to the sign-in form when nobody is signed
in; ``required=False`` for public pages), calls the same services as the JSON API with
``page.who`` — so authorisation is the one in :mod:`lmsd.policy` — and ends with
``page.render("area/template.html", **values)``.

- Templates are Jinja2 in ``lmsd/portal/templates``, autoescaped, extending ``base.html``.
  Strings are English msgids in ``{{ _("…") }}``; :mod:`lmsd.portal.i18n` translates them.
- No inline script or style anywhere: behaviour is in ``/static/*.js`` reading ``data-``
  attributes, looks in ``/static/portal.css``. The CSP says so (:data:`CSP`).
- Forms that change something carry ``{{ csrf_field() }}`` and the handler calls
  :meth:`Page.check_csrf` (the portal origin, plus an HMAC of the session cookie). Scripts send
  the token as the ``X-CSRF-Token`` header; it is in ``<meta name="csrf-token">``.
- Errors become HTML pages: an :class:`~lmsd.errors.LmsdError` shows its status with a
  translated title; another campus's or an unreadable resource is a plain 404 page.
- Invalid form input is re-rendered with the values given and a message per field
  (:class:`FormErrors`, the ``field`` macro in ``macros.html``), status 422.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import Controller, Request, Response
from litestar.datastructures import Cookie, State
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from markupsafe import Markup

from lmsd.campuses import service as campuses
from lmsd.errors import Forbidden, LmsdError
from lmsd.identity import service as identity
from lmsd.identity.tokens import TokenIssuer
from lmsd.policy import Identity
from lmsd.portal import i18n
from lmsd.portal.forms import (
    FormErrors as FormErrors,  # it moved to forms.py; imported from here by older pages
)
from lmsd.portal.static_files import asset_url
from lmsd.server.errors import status_of
from lmsd.server.session import DbSession

log = logging.getLogger("lmsd.portal")
COOKIE = "lmsd_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-cache",
}


def csrf_token(session_secret: str, session_token: str) -> str:
    """The anti-CSRF token of one session: an HMAC of the session cookie (nothing stored)."""
    mac = hmac.new(session_secret.encode(), b"csrf\n" + session_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def same_origin(request: Request[Any, Any, State]) -> bool:
    """A browser sends Origin with every POST; it must be the portal's own host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser (curl, tests); the token and SameSite=Strict still apply
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return origin.rstrip("/").split("://", 1)[-1] == host


def check_csrf(request: Request[Any, Any, State], session_token: str, sent: str) -> None:
    """Refuse a state-changing request with the session cookie that did not come from a portal
    page of that session: the portal's origin and the session's token (form field or header)."""
    expected = csrf_token(request.app.state.secrets.session_secret, session_token) if session_token else ""
    if not same_origin(request) or not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden("this request must be sent from a portal page; reload the page and try again")


def session_of(request: Request[Any, Any, State]) -> tuple[Identity, str] | None:
    """The verified identity and raw token of the session cookie, or None."""
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    issuer: TokenIssuer = request.app.state.issuer
    try:
        return issuer.verify(token), token
    except LmsdError:
        return None


class SignInRequired(Exception):
    """Raised by :func:`portal` for a page that needs a session: redirect to the sign-in form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("lmsd.portal", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        asset=asset_url,
        fmt_date=i18n.fmt_date,
        fmt_number=i18n.fmt_number,
        fmt_percent=i18n.fmt_percent,
        languages=i18n.LANGUAGES,
    )
    return env


ENV = _environment()


@dataclass
class Brand:
    id: uuid.UUID
    name: str
    has_logo: bool
    default_locale: str
    logo_version: str = ""  # the logo's stored hash (campuses.logo_hash), so a new one is not taken from a cache


@dataclass
class Page:
    """One request's portal context."""

    request: Request[Any, Any, State]
    who: Identity | None
    token: str
    lang: str
    campus: Brand
    cookies: list[Cookie] = field(default_factory=list)

    @property
    def csrf(self) -> str:
        return csrf_token(self.request.app.state.secrets.session_secret, self.token) if self.token else ""

    @property
    def settings(self) -> Any:
        return self.request.app.state.settings

    def check_csrf(self, sent: str | None = None) -> None:
        """Refuse a state-changing request that did not come from a portal page of this session.
        ``sent`` is the form's ``csrf_token``; a script's ``X-CSRF-Token`` header counts too."""
        check_csrf(self.request, self.token, sent or self.request.headers.get(CSRF_HEADER) or "")

    def remember_language(self, lang: str) -> None:
        """Set the language cookie (the picker's choice, also for the sign-in page later)."""
        self.cookies.append(
            Cookie(key=i18n.LANG_COOKIE, value=lang, max_age=LANG_COOKIE_MAX_AGE, samesite="lax", path="/",
                   httponly=True, secure=self.settings.portal_url.startswith("https://"))
        )

    def render(self, template: str, status: int = 200, csp: str | None = None, **values: Any) -> Response[str]:
        """The template as the response; ``csp`` replaces the default policy (a page with the
        video player needs its media origins: ``lmsd.portal.player.watch_page_csp``)."""
        i18n.activate(self.lang)
        csrf = self.csrf

        def csrf_field() -> Markup:
            return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf)

        html = ENV.get_template(template).render(
            page=self, who=self.who, campus=self.campus, lang=self.lang, csrf=csrf, csrf_field=csrf_field,
            path=self.request.url.path, **values,
        )
        headers = SECURITY_HEADERS if csp is None else {**SECURITY_HEADERS, "Content-Security-Policy": csp}
        return Response(html, status_code=status, media_type="text/html", headers=headers, cookies=self.cookies)

    def redirect(self, url: str) -> Response[Any]:
        return Redirect(url, status_code=303, cookies=self.cookies)


async def _brand(db: DbSession, campus_id: uuid.UUID) -> Brand:
    found = await campuses.branding_of(db, campus_id)
    return Brand(found.id, found.name, found.has_logo, found.default_locale, found.logo_hash[:12])


async def portal(request: Request[Any, Any, State], db: DbSession, *, required: bool = True) -> Page:
    """The context of a portal page. Raises :class:`SignInRequired` when ``required`` and nobody
    (or an expired session) is signed in."""
    found = session_of(request)
    if found is None and required:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    who, token = found if found is not None else (None, "")
    campus_id = who.campus_id if who is not None else uuid.UUID(request.app.state.settings.campus.id)
    brand = await _brand(db, campus_id)
    profile = await identity.locale_of(db, who) if who is not None else None
    lang = i18n.negotiate(
        profile, request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"), brand.default_locale
    )
    i18n.activate(lang)
    return Page(request, who, token, lang, brand)


async def admin_page(request: Request[Any, Any, State], db: DbSession) -> Page:
    """The page context of a campus admin (the administration pages); anyone else gets the 403 page."""
    page = await portal(request, db)
    if page.who is None or page.who.role != "admin":
        raise Forbidden("campus administrators only")
    return page


def safe_next(url: str | None) -> str:
    """A local path to go to after signing in; anything else (another host, ``//x``) is ``/``."""
    if not url:
        return "/"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def _error_page(request: Request[Any, Any, State], status: int, title: str, detail: str) -> Response[str]:
    """An error page in the visitor's language; ``title`` and ``detail`` are msgids."""
    found = session_of(request)
    who, token = found if found is not None else (None, "")
    lang = i18n.negotiate(None, request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"), "en")
    i18n.activate(lang)
    settings = request.app.state.settings
    brand = Brand(uuid.UUID(settings.campus.id), settings.campus.name, False, "en")
    page = Page(request, who, token, lang, brand)
    return page.render("error.html", status=status, title=i18n.gettext(title), detail=i18n.gettext(detail))


def _(message: str) -> str:
    """Marks a msgid for extraction; translated later, in the page's language."""
    return message


def html_error(request: Request[Any, Any, State], exc: Exception) -> Response[Any]:
    """Errors of portal pages as HTML in the page's language (the API's stay problem+json)."""
    if isinstance(exc, SignInRequired):
        return Redirect(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)
    if isinstance(exc, HTTPException):
        status = exc.status_code
    elif isinstance(exc, LmsdError):
        status = status_of(exc)[0]
    else:
        log.error("portal page failed", exc_info=exc)
        status = 500
    if status == 404:
        return _error_page(request, 404, _("Page not found"), _("There is no such page here."))
    if status == 403:
        return _error_page(request, 403, _("Not allowed"), _("Your account may not open this page."))
    if status == 401:
        return Redirect("/login", status_code=303)
    if status >= 500:
        return _error_page(request, status, _("Something went wrong"), _("Please try again in a moment."))
    # a domain error's message is English (the API's); the title says what happened in the page's language
    return _error_page(request, status, _("This request could not be completed"), str(exc))


class PortalPages(Controller):
    """Base of the portal's page controllers: HTML errors, not in the API schema."""

    include_in_schema = False
    exception_handlers = {
        SignInRequired: html_error, LmsdError: html_error, HTTPException: html_error, Exception: html_error,
    }
