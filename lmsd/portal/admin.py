"""Portal: the campus admin's pages: users and roles, campus settings, health.

The health page is :mod:`lmsd.portal.health`. Every page is for the campus role ``admin`` (others get the 403 page) and works on the admin's
own campus only: the services scope every query to ``page.who.campus_id``, so another campus's
ids are not found (404). ``/campus/logo`` is public: the sign-in page shows it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State, UploadFile

from lmsd.campuses import service as campuses
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.identity import service as identity
from lmsd.identity import sso
from lmsd.portal.health import HealthPages
from lmsd.portal.i18n import fmt_date
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import FormErrors, Page, PortalPages, admin_page, portal
from lmsd.server.session import DbSession

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
USERS_PER_PAGE = 50
LOGO_CSP_SVG = "default-src 'none'; style-src 'unsafe-inline'"


def _role_names() -> dict[str, str]:
    return {"learner": _("Learner"), "instructor": _("Instructor"), "admin": _("Administrator")}


async def _form(request: Request[Any, Any, State], page: Page) -> dict[str, Any]:
    """The posted form, after the CSRF check (before anything else is looked at)."""
    form = await request.form()
    page.check_csrf(str(form.get("csrf_token", "")))
    return dict(form.items())


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


# -- users ---------------------------------------------------------------------------------------


def _user_errors(values: dict[str, str], password: str) -> FormErrors:
    errors = FormErrors()
    if not values["email"]:
        errors["email"] = _("Enter an e-mail address.")
    elif len(values["email"]) > 320 or not EMAIL.match(values["email"]):
        errors["email"] = _("Enter an e-mail address like name@example.org.")
    if not values["display_name"]:
        errors["display_name"] = _("Enter the person's name.")
    elif len(values["display_name"]) > 200:
        errors["display_name"] = _("A name may have at most 200 characters.")
    if values["role"] not in identity.ROLES:
        errors["role"] = _("Choose a role from the list.")
    if len(password) < 12:
        errors["password"] = _("A password needs at least 12 characters.")
    elif len(password) > 1024:
        errors["password"] = _("A password may have at most 1024 characters.")
    return errors


async def _users_page(
    page: Page,
    db: DbSession,
    *,
    cursor: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    message: str = "",
    problem: str = "",
    reset: dict[str, str] | None = None,
) -> Response[str]:
    assert page.who is not None
    found = await identity.list_users(db, page.who, cursor, USERS_PER_PAGE, None)
    return page.render(
        "admin/users.html", status=status, title=_("Users"), users=found.items, next_cursor=found.next_cursor,
        cursor=cursor or "", values=values or {"email": "", "display_name": "", "role": "learner"},
        errors=errors or FormErrors(), message=message, problem=problem, reset=reset, roles=_role_names(),
    )


# -- campus settings -----------------------------------------------------------------------------

PROVIDER_FIELDS = ("slug", "provider_name", "issuer", "client_id", "scopes", "default_role")


def _provider_errors(values: dict[str, str], secret: str) -> FormErrors:
    errors = FormErrors()
    if not values["slug"]:
        errors["slug"] = _("Enter a short name for the address (like university).")
    elif len(values["slug"]) > 64 or not SLUG.match(values["slug"]):
        errors["slug"] = _("Use lowercase letters, digits and hyphens only, at most 64.")
    if not values["provider_name"]:
        errors["provider_name"] = _("Enter the name shown on the sign-in button.")
    elif len(values["provider_name"]) > 200:
        errors["provider_name"] = _("A name may have at most 200 characters.")
    issuer = values["issuer"]
    if not issuer:
        errors["issuer"] = _("Enter the issuer URL of the identity provider.")
    # Plain http only for a provider on this very machine (loopback by nature), as identity.sso checks.
    elif len(issuer) > 500 or not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")) or " " in issuer:
        errors["issuer"] = _("The issuer must be an https:// URL.")
    if not values["client_id"]:
        errors["client_id"] = _("Enter the client ID the identity provider gave you.")
    elif len(values["client_id"]) > 500:
        errors["client_id"] = _("At most 500 characters.")
    if not secret:
        errors["client_secret"] = _("Enter the client secret the identity provider gave you.")
    elif len(secret) > 500:
        errors["client_secret"] = _("At most 500 characters.")
    if "openid" not in values["scopes"].split() or len(values["scopes"]) > 500:
        errors["scopes"] = _("The scopes must include openid.")
    if values["default_role"] not in identity.ROLES:
        errors["default_role"] = _("Choose a role from the list.")
    return errors


async def _campus_page(
    page: Page,
    db: DbSession,
    *,
    status: int = 200,
    settings_values: dict[str, str] | None = None,
    provider_values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    message: str = "",
) -> Response[str]:
    assert page.who is not None
    providers = await sso.list_providers(db, page.who)
    return page.render(
        "admin/campus.html", status=status, title=_("Campus settings"),
        settings_values=settings_values or {"name": page.campus.name, "default_locale": page.campus.default_locale},
        provider_values=provider_values or {
            "slug": "", "provider_name": "", "issuer": "", "client_id": "", "scopes": "openid email profile",
            "default_role": "learner", "trust_email": "",
        },
        providers=providers, errors=errors or FormErrors(), message=message, roles=_role_names(),
        max_kib=campuses.LOGO_MAX_BYTES // 1024,
    )


def _logo_error(data: bytes) -> str:
    """Why ``data`` cannot be the logo, or "" when it can."""
    if not data:
        return _("Choose an image file.")
    if len(data) > campuses.LOGO_MAX_BYTES:
        return _("The image is too large: at most %(size)s KiB.") % {"size": campuses.LOGO_MAX_BYTES // 1024}
    kind = campuses.logo_type(data)
    if kind is None:
        return _("This file is not a PNG, JPEG, WebP or SVG image.")
    if kind == "image/svg+xml" and not campuses.svg_is_safe(data):
        return _("This SVG contains scripts or event handlers, which a logo may not have.")
    return ""


class AccountsAndCampusPages(PortalPages):
    path = "/"

    @get("/admin")
    async def overview(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        counts = await identity.count_users(db, page.who)
        providers = await sso.list_providers(db, page.who)
        return page.render(
            "admin/index.html", title=_("Administration"), counts=counts, roles=_role_names(),
            providers=len(providers), enabled=sum(1 for p in providers if p.enabled),
        )

    # users

    @get("/admin/users")
    async def users(self, request: Request[Any, Any, State], db: DbSession, cursor: str | None = None,
                    created: uuid.UUID | None = None, changed: uuid.UUID | None = None) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        message = ""
        for done, wording in ((created, _("Account created for %(email)s.")),
                           (changed, _("The role of %(email)s is now %(role)s; it applies from their next sign-in."))):
            if done is not None:
                try:
                    user = await identity.get_user(db, page.who, done)
                except NotFound:
                    continue
                message = wording % {"email": user.email, "role": _role_names().get(user.role, user.role)}
        return await _users_page(page, db, cursor=cursor, message=message)

    @post("/admin/users", status_code=200)
    async def create_user(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await _form(request, page)
        values = {"email": _text(form, "email").lower(), "display_name": _text(form, "display_name"),
                  "role": _text(form, "role")}
        password = form.get("password", "")
        password = password if isinstance(password, str) else ""
        errors = _user_errors(values, password)
        if not errors:
            try:
                async with db.begin_nested():  # a duplicate rolls back this insert only
                    user = await identity.create_user(
                        db, page.who, values["email"], values["display_name"], values["role"], password
                    )
            except Conflict:
                errors["email"] = _("An account with this e-mail address already exists.")
            except Invalid:
                errors["password"] = _("A password needs at least 12 characters.")
            else:
                return page.redirect(f"/admin/users?created={user.id}")
        return await _users_page(page, db, status=422, values=values, errors=errors)

    @post("/admin/users/{user_id:uuid}/role", status_code=200)
    async def change_role(self, request: Request[Any, Any, State], db: DbSession, user_id: uuid.UUID) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await _form(request, page)
        role = _text(form, "role")
        if role not in identity.ROLES:
            return await _users_page(page, db, status=422, problem=_("Choose a role from the list."))
        try:
            await identity.set_role(db, page.who, user_id, role)
        except Conflict:
            return await _users_page(
                page, db, status=409,
                problem=_("You cannot remove your own administrator role. Another administrator has to do it."),
            )
        return page.redirect(f"/admin/users?changed={user_id}")

    @post("/admin/users/{user_id:uuid}/password-reset", status_code=200)
    async def password_reset(self, request: Request[Any, Any, State], db: DbSession, user_id: uuid.UUID) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        await _form(request, page)
        user = await identity.get_user(db, page.who, user_id)
        token, expires = await identity.start_password_reset(db, page.who, user_id)
        link = f"{page.settings.portal_url.rstrip('/')}/password-reset?{urlencode({'token': token})}"
        reset = {"email": user.email, "token": token, "expires": fmt_date(expires, "medium"), "link": link}
        return await _users_page(page, db, reset=reset)

    # campus settings and sign-in providers

    @get("/admin/campus")
    async def campus(self, request: Request[Any, Any, State], db: DbSession, saved: str = "") -> Response[Any]:
        page = await admin_page(request, db)
        messages = {
            "settings": _("The campus settings are saved."), "logo": _("The new logo is saved."),
            "logo-removed": _("The logo is removed."), "provider": _("The sign-in provider is added."),
            "provider-enabled": _("The sign-in provider is offered on the sign-in page."),
            "provider-disabled": _("The sign-in provider is no longer offered on the sign-in page."),
        }
        return await _campus_page(page, db, message=messages.get(saved, ""))

    @post("/admin/campus", status_code=200)
    async def save_campus(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await _form(request, page)
        values = {"name": _text(form, "name"), "default_locale": _text(form, "default_locale")}
        errors = FormErrors()
        if not values["name"]:
            errors["name"] = _("Enter the campus name.")
        elif len(values["name"]) > 200:
            errors["name"] = _("A name may have at most 200 characters.")
        if values["default_locale"] not in campuses.LOCALES:
            errors["default_locale"] = _("Choose one of the languages in the list.")
        if errors:
            return await _campus_page(page, db, status=422, settings_values=values, errors=errors)
        await campuses.update_branding(db, page.who, values["name"], values["default_locale"])
        return page.redirect("/admin/campus?saved=settings")

    @post("/admin/campus/logo", status_code=200)
    async def upload_logo(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await _form(request, page)
        upload = form.get("logo")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        problem = _logo_error(data)
        if problem:
            return await _campus_page(page, db, status=422, errors=FormErrors(logo=problem))
        await campuses.set_logo(db, page.who, data)
        return page.redirect("/admin/campus?saved=logo")

    @post("/admin/campus/logo/remove", status_code=200)
    async def remove_logo(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        await _form(request, page)
        await campuses.set_logo(db, page.who, None)
        return page.redirect("/admin/campus?saved=logo-removed")

    @post("/admin/sso", status_code=200)
    async def add_provider(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await _form(request, page)
        values = {name: _text(form, name) for name in PROVIDER_FIELDS}
        values["slug"] = values["slug"].lower()
        values["trust_email"] = "true" if _text(form, "trust_email") == "true" else ""
        secret = _text(form, "client_secret")
        errors = _provider_errors(values, secret)
        if not errors:
            data = sso.ProviderIn(
                slug=values["slug"], name=values["provider_name"], issuer=values["issuer"], client_id=values["client_id"],
                client_secret=secret, scopes=values["scopes"], default_role=values["default_role"],
                trust_email=bool(values["trust_email"]),
            )
            try:
                async with db.begin_nested():
                    await sso.create_provider(db, page.who, data)
            except Conflict:
                errors["slug"] = _("This campus already has a provider with this short name.")
            except Invalid as exc:
                errors["issuer"] = str(exc)
            else:
                return page.redirect("/admin/campus?saved=provider")
        return await _campus_page(page, db, status=422, provider_values=values, errors=errors)

    @post("/admin/sso/{provider_id:uuid}/enabled", status_code=200)
    async def toggle_provider(self, request: Request[Any, Any, State], db: DbSession, provider_id: uuid.UUID) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await _form(request, page)
        enabled = _text(form, "enabled") == "true"
        await sso.set_provider_enabled(db, page.who, provider_id, enabled)
        return page.redirect("/admin/campus?saved=" + ("provider-enabled" if enabled else "provider-disabled"))

    @get("/campus/logo")
    async def logo(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        """The campus logo (public: the sign-in page shows it); the 404 page when there is none."""
        page = await portal(request, db, required=False)
        found = await campuses.logo_of(db, page.campus.id)
        if found is None:
            raise NotFound("this campus has no logo")
        data, kind, digest = found
        etag = f'"{digest}"'
        headers = {
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "ETag": etag,
            "Vary": "Cookie",
            "Content-Security-Policy": LOGO_CSP_SVG if kind == "image/svg+xml" else "default-src 'none'",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(data, media_type=kind, headers=headers)

AdminPages = Router(path="/", route_handlers=[AccountsAndCampusPages, HealthPages], include_in_schema=False)
