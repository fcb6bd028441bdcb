"""HTTP for OpenID Connect sign-in and for managing a campus's providers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.params import Parameter
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.identity import sso
from lmsd.identity.tokens import ACCESS_TOKEN_TTL_S, TokenIssuer
from lmsd.policy import Identity

# A provider's slug in a path: what a provider may be named (anything else names none: 400).
Slug = Annotated[str, Parameter(min_length=1, max_length=sso.SLUG_MAX, pattern=sso.SLUG_PATTERN)]

STATE_COOKIE = "lmsd_sso"
SESSION_COOKIE = "lmsd_session"


class ProviderBody(msgspec.Struct, forbid_unknown_fields=True):
    # the service's limits (sso.provider_problems checks the same whatever the entry point)
    slug: Annotated[str, msgspec.Meta(min_length=1, max_length=sso.SLUG_MAX, pattern=sso.SLUG_PATTERN)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=sso.NAME_MAX)]
    issuer: Annotated[str, msgspec.Meta(min_length=sso.ISSUER_MIN, max_length=sso.TEXT_MAX)]
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=sso.TEXT_MAX)]
    client_secret: Annotated[str, msgspec.Meta(min_length=1, max_length=sso.TEXT_MAX)]
    scopes: Annotated[str, msgspec.Meta(max_length=sso.TEXT_MAX)] = "openid email profile"
    default_role: Literal["learner", "instructor", "admin"] = "learner"
    # its e-mails count as verified even when the ID token lacks email_verified: true
    trust_email: bool = False


class ProviderOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    issuer: str
    client_id: str
    scopes: str
    default_role: str
    trust_email: bool
    login_path: str  # the client secret is never returned


def _out(p: object) -> ProviderOut:
    return ProviderOut(
        p.id, p.slug, p.name, p.issuer, p.client_id, p.scopes, p.default_role, p.trust_email,  # type: ignore[attr-defined]
        f"/api/v1/sso/{p.campus_id}/{p.slug}/login",  # type: ignore[attr-defined]
    )


def _redirect_uri(state: State, campus_id: uuid.UUID, slug: str) -> str:
    return f"{state.settings.portal_url}api/v1/sso/{campus_id}/{slug}/callback"


class SsoController(Controller):
    path = "/api/v1/sso"
    tags = ["auth"]

    @post("/providers")
    async def create_provider(self, db: AsyncSession, identity: Identity, data: ProviderBody) -> Response[ProviderOut]:
        """Register the campus's OpenID Connect identity provider (campus admins)."""
        provider = await sso.create_provider(db, identity, sso.ProviderIn(**msgspec.structs.asdict(data)))
        return Response(_out(provider), status_code=201)

    @get("/providers")
    async def list_providers(self, db: AsyncSession, identity: Identity) -> list[ProviderOut]:
        return [_out(p) for p in await sso.list_providers(db, identity)]

    @get("/{campus_id:uuid}/{slug:str}/login", status_code=302)
    async def login(self, db: AsyncSession, state: State, campus_id: uuid.UUID, slug: Slug) -> Response[None]:
        """Send the browser to the campus's identity provider."""
        url, cookie = await sso.start(db, campus_id, slug, _redirect_uri(state, campus_id, slug), state.secrets.session_secret)
        secure = state.settings.portal_url.startswith("https://")
        return Redirect(
            url,
            status_code=302,
            cookies=[Cookie(key=STATE_COOKIE, value=cookie, max_age=sso.STATE_TTL_S, httponly=True, secure=secure,
                            samesite="lax", path="/api/v1/sso")],
        )

    @get("/{campus_id:uuid}/{slug:str}/callback", status_code=303)
    async def callback(
        self,
        request: Request[object, object, State],
        db: AsyncSession,
        state: State,
        campus_id: uuid.UUID,
        slug: Slug,
        code: Annotated[str | None, Parameter(max_length=2000)] = None,
    ) -> Response[None]:
        """The identity provider sends the browser back here; sign in and go to the portal."""
        # `state` is the OAuth parameter here; Litestar reserves the name for the app state.
        returned_state = request.query_params.get("state")
        who = await sso.finish(
            db, campus_id, slug, _redirect_uri(state, campus_id, slug), state.secrets.session_secret,
            request.cookies.get(STATE_COOKIE), code, returned_state,
        )
        issuer: TokenIssuer = state.issuer
        secure = state.settings.portal_url.startswith("https://")
        response: Response[None] = Redirect(
            "/",
            status_code=303,
            cookies=[Cookie(key=SESSION_COOKIE, value=issuer.issue(who), max_age=ACCESS_TOKEN_TTL_S, httponly=True,
                            secure=secure, samesite="strict", path="/")],
        )
        response.delete_cookie(STATE_COOKIE, path="/api/v1/sso")
        return response
