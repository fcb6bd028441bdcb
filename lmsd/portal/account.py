"""Portal pages every visitor meets: the home redirect, sign-in and sign-out, the language
picker, password reset. The rules are the identity service's; these pages only show them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, State

from lmsd.errors import LmsdError
from lmsd.identity import service as identity
from lmsd.identity import sso
from lmsd.identity.service import finish_password_reset, sign_in
from lmsd.identity.tokens import ACCESS_TOKEN_TTL_S, TokenIssuer
from lmsd.portal import i18n
from lmsd.portal.forms import FormErrors
from lmsd.portal.pages import COOKIE, Page, PortalPages, portal, safe_next, same_origin
from lmsd.server.errors import status_of
from lmsd.server.session import DbSession


def _reset_page(page: Page, token: str, errors: FormErrors, problem: str = "", status: int = 200) -> Response[str]:
    return page.render(
        "password_reset.html", status=status, title=i18n.gettext("Choose a new password"), token=token,
        errors=errors, problem=problem, password_min=i18n.fmt_number(identity.PASSWORD_MIN),
    )


async def _sign_in_page(
    page: Page, db: DbSession, status: int = 200, error: str = "", email: str = "", next_url: str = "/",
    notice: str = "",
) -> Response[str]:
    providers = await sso.enabled_providers(db, page.campus.id)
    return page.render(
        "login.html", status=status, title=i18n.gettext("Sign in"), error=error, email=email,
        next=safe_next(next_url), providers=providers, notice=notice,
    )


class AccountPages(PortalPages):
    path = "/"

    @get("/")
    async def home(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await portal(request, db, required=False)
        return page.redirect("/my" if page.who is not None else "/login")

    @get("/login")
    async def login_form(
        self, request: Request[Any, Any, State], db: DbSession, next: str = "/", reset: str = ""
    ) -> Response[Any]:
        page = await portal(request, db, required=False)
        if page.who is not None:
            return page.redirect(safe_next(next))
        notice = i18n.gettext("Your new password is saved: sign in with it.") if reset else ""
        return await _sign_in_page(page, db, next_url=next, notice=notice)

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await portal(request, db, required=False)
        form = await request.form()
        email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
        next_url = str(form.get("next", "/"))
        if not same_origin(request):
            return await _sign_in_page(page, db, 403, i18n.gettext("This form must be sent from the portal."), email, next_url)
        if not email or not password:
            return await _sign_in_page(page, db, 422, i18n.gettext("Enter your e-mail address and password."), email, next_url)
        try:
            who = await sign_in(db, page.campus.id, email, password)
        except LmsdError as exc:
            message = (
                i18n.gettext("Too many failed attempts: try again later.") if status_of(exc)[0] == 429
                else i18n.gettext("The e-mail address or password is not right.")
            )
            return await _sign_in_page(page, db, status_of(exc)[0], message, email, next_url)
        issuer: TokenIssuer = request.app.state.issuer
        page.cookies.append(
            Cookie(
                key=COOKIE, value=issuer.issue(who), max_age=ACCESS_TOKEN_TTL_S, httponly=True,
                secure=page.settings.portal_url.startswith("https://"), samesite="strict", path="/",
            )
        )
        return page.redirect(safe_next(next_url))

    @get("/password-reset")
    async def password_reset_form(self, request: Request[Any, Any, State], db: DbSession, token: str = "") -> Response[Any]:
        """The link an admin hands over (``/password-reset?token=…``): choose a new password."""
        page = await portal(request, db, required=False)
        return _reset_page(page, token, FormErrors())

    @post("/password-reset", status_code=303)
    async def password_reset(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await portal(request, db, required=False)
        form = await request.form()
        token, password, confirm = (str(form.get(k, "")) for k in ("token", "password", "confirm"))
        errors = FormErrors()
        for rule in identity.password_problems(password):  # the service's limits, its codes
            errors.show(rule, ("password",))
        if not errors and confirm != password:
            errors["confirm"] = i18n.gettext("The two passwords are not the same.")
        problem = ""
        if not same_origin(request):
            problem = i18n.gettext("This form must be sent from the portal.")
        elif not errors:
            try:
                await finish_password_reset(db, token, password)
            except LmsdError as exc:
                if not errors.show(exc, ("password",)):  # a password rule: under the field; else the link
                    problem = i18n.gettext(
                        "This reset link is invalid, used or expired: ask your campus administrator for a new one."
                    )
        if errors or problem:
            return _reset_page(page, token, errors, problem, status=422 if errors else 400)
        return page.redirect("/login?reset=1")

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await portal(request, db, required=False)
        if page.who is not None:
            page.check_csrf(str((await request.form()).get("csrf_token", "")))
        response = page.redirect("/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    @post("/language", status_code=303)
    async def language(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        """The language picker: a cookie for everyone, and the profile's language when signed in."""
        page = await portal(request, db, required=False)
        form = await request.form()
        lang = i18n.supported(str(form.get("lang", "")))
        if page.who is not None:
            page.check_csrf(str(form.get("csrf_token", "")))
        elif not same_origin(request):
            lang = None
        if lang is None:
            return page.render("error.html", status=422, title=i18n.gettext("Unknown language"),
                               detail=i18n.gettext("Choose one of the languages in the list."))
        if page.who is not None:
            await identity.set_locale(db, page.who, lang)
        page.remember_language(lang)
        back = request.headers.get("referer", "/")
        return page.redirect(safe_next(_path_of(back)))


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.path else "/"
