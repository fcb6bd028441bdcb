"""Portal: the campus admin's pages: users and roles, campus settings, health.

The health page is :mod:`lmsd.portal.health`. Every page is for the campus role ``admin`` (others get the 403 page) and works on the admin's
own campus only: the services scope every query to ``page.who.campus_id``, so another campus's
ids are not found (404). ``/campus/logo`` is public: the sign-in page shows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State, UploadFile

from lmsd.campuses import service as campuses
from lmsd.errors import LmsdError, NotFound
from lmsd.identity import service as identity
from lmsd.identity import sso
from lmsd.portal import forms
from lmsd.portal.forms import FormErrors
from lmsd.portal.health import HealthPages
from lmsd.portal.i18n import fmt_date, fmt_number
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import Page, PortalPages, admin_page, portal
from lmsd.server.errors import status_of
from lmsd.server.session import DbSession

USERS_PER_PAGE = 50
LOGO_CSP_SVG = "default-src 'none'; style-src 'unsafe-inline'"


def _role_names() -> dict[str, str]:
    return {"learner": _("Learner"), "instructor": _("Instructor"), "admin": _("Administrator")}


def _show_all(problems: Sequence[LmsdError], fields: Mapping[str, str]) -> FormErrors:
    """What a service's ``*_problems`` says of a form, each under its field (the first one per
    field). A problem about no field of the form is a bug of the page: raised (the error page)."""
    errors = FormErrors()
    for problem in problems:
        if fields.get(problem.field or "") in errors:
            continue
        if not errors.show(problem, fields):
            raise problem
    return errors


# -- users ---------------------------------------------------------------------------------------


USER_FIELDS = {"email": "email", "display_name": "display_name", "role": "role", "password": "password"}
SETTINGS_FIELDS = {"name": "name", "default_locale": "default_locale"}


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
        password_min=fmt_number(identity.PASSWORD_MIN),
    )


# -- campus settings -----------------------------------------------------------------------------

PROVIDER_FIELDS = ("slug", "provider_name", "issuer", "client_id", "scopes", "default_role")
# the service's field names (sso.ProviderIn) → this form's
PROVIDER_FORM = {
    "slug": "slug", "name": "provider_name", "issuer": "issuer", "client_id": "client_id",
    "client_secret": "client_secret", "scopes": "scopes", "default_role": "default_role",
}


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
        form = await forms.read(page, request)
        values = {"email": forms.text(form, "email").lower(), "display_name": forms.text(form, "display_name"),
                  "role": forms.text(form, "role")}
        password = forms.text(form, "password", strip=False)
        # every rule the service would refuse, shown at once; then the service decides (a taken e-mail)
        errors = _show_all(
            identity.user_problems(values["email"], values["display_name"], values["role"], password), USER_FIELDS
        )
        if not errors:
            try:
                user = await identity.create_user(
                    db, page.who, values["email"], values["display_name"], values["role"], password
                )
            except LmsdError as exc:
                if not errors.show(exc, USER_FIELDS):
                    raise
            else:
                return page.redirect(f"/admin/users?created={user.id}")
        return await _users_page(page, db, status=422, values=values, errors=errors)

    @post("/admin/users/{user_id:uuid}/role", status_code=200)
    async def change_role(self, request: Request[Any, Any, State], db: DbSession, user_id: uuid.UUID) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await forms.read(page, request)
        try:
            await identity.set_role(db, page.who, user_id, forms.text(form, "role"))
        except LmsdError as exc:
            if exc.field != "role":
                raise  # not about the role chosen (no such user): the error page
            return await _users_page(page, db, status=status_of(exc)[0], problem=forms.message_for(exc))
        return page.redirect(f"/admin/users?changed={user_id}")

    @post("/admin/users/{user_id:uuid}/password-reset", status_code=200)
    async def password_reset(self, request: Request[Any, Any, State], db: DbSession, user_id: uuid.UUID) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        await forms.read(page, request)
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
        form = await forms.read(page, request)
        values = {"name": forms.text(form, "name"), "default_locale": forms.text(form, "default_locale")}
        errors = _show_all(campuses.branding_problems(values["name"], values["default_locale"]), SETTINGS_FIELDS)
        if errors:
            return await _campus_page(page, db, status=422, settings_values=values, errors=errors)
        await campuses.update_branding(db, page.who, values["name"], values["default_locale"])
        return page.redirect("/admin/campus?saved=settings")

    @post("/admin/campus/logo", status_code=200)
    async def upload_logo(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await forms.read(page, request)
        upload = form.get("logo")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        errors = FormErrors()
        if not data:  # no file chosen (the service takes None as "remove the logo")
            errors["logo"] = _("Choose an image file.")
        else:
            try:
                await campuses.set_logo(db, page.who, data)
            except LmsdError as exc:
                if not errors.show(exc, ("logo",)):
                    raise
        if errors:
            return await _campus_page(page, db, status=422, errors=errors)
        return page.redirect("/admin/campus?saved=logo")

    @post("/admin/campus/logo/remove", status_code=200)
    async def remove_logo(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        await forms.read(page, request)
        await campuses.set_logo(db, page.who, None)
        return page.redirect("/admin/campus?saved=logo-removed")

    @post("/admin/sso", status_code=200)
    async def add_provider(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await forms.read(page, request)
        values = {name: forms.text(form, name) for name in PROVIDER_FIELDS}
        values["slug"] = values["slug"].lower()
        values["trust_email"] = "true" if forms.text(form, "trust_email") == "true" else ""
        data = sso.ProviderIn(
            slug=values["slug"], name=values["provider_name"], issuer=values["issuer"], client_id=values["client_id"],
            client_secret=forms.text(form, "client_secret"), scopes=values["scopes"],
            default_role=values["default_role"], trust_email=bool(values["trust_email"]),
        )
        # every rule the service would refuse, shown at once; then the service decides (a taken slug)
        errors = _show_all(sso.provider_problems(data), PROVIDER_FORM)
        if not errors:
            try:
                await sso.create_provider(db, page.who, data)
            except LmsdError as exc:
                if not errors.show(exc, PROVIDER_FORM):
                    raise
            else:
                return page.redirect("/admin/campus?saved=provider")
        return await _campus_page(page, db, status=422, provider_values=values, errors=errors)

    @post("/admin/sso/{provider_id:uuid}/enabled", status_code=200)
    async def toggle_provider(self, request: Request[Any, Any, State], db: DbSession, provider_id: uuid.UUID) -> Response[Any]:
        page = await admin_page(request, db)
        assert page.who is not None
        form = await forms.read(page, request)
        enabled = forms.text(form, "enabled") == "true"
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
