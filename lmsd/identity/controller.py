"""HTTP for sign-in: thin, it only translates to the service."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.identity.service import ACCESS_TOKEN_TTL_S, Identity, TokenIssuer, authenticate


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    email: str = msgspec.field()
    password: str = msgspec.field()


class TokenOut(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int


class MeOut(msgspec.Struct):
    id: str
    campus_id: str
    email: str
    display_name: str
    role: str


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", status_code=200)
    async def login(self, data: LoginBody, db: AsyncSession, state: State) -> TokenOut:
        """Exchange an e-mail and password for a short-lived access token (EdDSA JWT)."""
        campus_id = uuid.UUID(state.settings.campus.id)
        who = await authenticate(db, campus_id, data.email, data.password)
        issuer: TokenIssuer = state.issuer
        return TokenOut(issuer.issue(who), "Bearer", ACCESS_TOKEN_TTL_S)

    @get("/jwks.json")
    async def jwks(self, state: State) -> dict[str, object]:
        """Public keys that verify this campus's tokens (used by the gateway)."""
        issuer: TokenIssuer = state.issuer
        return issuer.jwks()


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]

    @get("/")
    async def me(self, identity: Identity) -> MeOut:
        """The signed-in account."""
        return MeOut(
            str(identity.user_id), str(identity.campus_id), identity.email, identity.display_name, identity.role
        )
