"""Portal pages: the landing page and sign-in form, served without any inline script."""

from __future__ import annotations

import html
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.errors import LmsdError
from lmsd.identity.service import sign_in
from lmsd.identity.tokens import ACCESS_TOKEN_TTL_S, TokenIssuer

COOKIE = "lmsd_session"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInForm(msgspec.Struct):
    email: str = ""
    password: str = ""


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}}
label{{display:block;margin-top:1rem}}input{{display:block;width:100%;padding:.5rem;font-size:1rem}}
button{{margin-top:1rem;padding:.5rem 1.5rem;font-size:1rem}}.error{{color:#a00000}}</style>
</head><body><main>{body}</main></body></html>"""
    return Response(doc, status_code=status, media_type="text/html", headers=SECURITY_HEADERS)


def _sign_in_form(campus: str, error: str = "") -> str:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<h1>{html.escape(campus)}</h1>
<h2>Sign in</h2>{message}
<form method="post" action="/login">
<label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>"""


class PortalController(Controller):
    path = "/"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[object, object, State], state: State) -> Response[str]:
        campus = state.settings.campus.name
        token = request.cookies.get(COOKIE, "")
        if token:
            issuer: TokenIssuer = state.issuer
            try:
                identity = issuer.verify(token)
            except LmsdError:
                identity = None
            if identity is not None:
                who = html.escape(identity.email)
                role = html.escape(identity.role)
                return _page(
                    campus,
                    f"<h1>{html.escape(campus)}</h1><p>Signed in as <strong>{who}</strong> ({role}).</p>"
                    '<form method="post" action="/logout"><button type="submit">Sign out</button></form>',
                )
        return _page(campus, _sign_in_form(campus))

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[object, object, State],
        data: Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        db: AsyncSession,
        state: State,
    ) -> Response[str]:
        campus = state.settings.campus.name
        if not _same_origin(request):
            return _page(campus, _sign_in_form(campus, "This form must be sent from the portal."), 403)
        try:
            who = await sign_in(db, uuid.UUID(state.settings.campus.id), data.email, data.password)
        except LmsdError as exc:
            return _page(campus, _sign_in_form(campus, str(exc)), 401)
        issuer: TokenIssuer = state.issuer
        secure = state.settings.portal_url.startswith("https://")
        return Redirect(
            "/",
            status_code=303,
            cookies=[
                Cookie(
                    key=COOKIE, value=issuer.issue(who), max_age=ACCESS_TOKEN_TTL_S,
                    httponly=True, secure=secure, samesite="strict", path="/",
                )
            ],
        )

    @post("/logout", status_code=303)
    async def logout(self, request: Request[object, object, State]) -> Response[str]:
        if not _same_origin(request):
            return _page("Sign out", "<p>This form must be sent from the portal.</p>", 403)
        response: Response[str] = Redirect("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def _same_origin(request: Request[object, object, State]) -> bool:
    """CSRF defence for cookie sessions: a browser always sends Origin on a form POST."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser (curl, tests); SameSite=Strict protects the cookie anyway
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return origin.rstrip("/").split("://", 1)[-1] == host
