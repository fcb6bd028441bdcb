"""HTTP for sign-in, tokens, accounts and password resets: thin, it only translates."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination
from lmsd.db.models import User
from lmsd.identity import service, tokens
from lmsd.identity.schemas import DisplayName, Email, NewPassword, Password
from lmsd.policy import Identity


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=service.EMAIL_MAX)]
    password: Password
    campus: uuid.UUID | None = None


class RefreshBody(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class TokenOut(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class MeOut(msgspec.Struct):
    id: uuid.UUID
    campus_id: uuid.UUID
    email: str
    display_name: str
    role: str
    platform_admin: bool


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    display_name: DisplayName
    role: Literal["learner", "instructor", "admin"]
    password: NewPassword


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    display_name: str
    role: str
    created_at: dt.datetime


class UserPage(msgspec.Struct):
    items: list[UserOut]
    next_cursor: str | None


class ResetOut(msgspec.Struct):
    token: str
    expires_at: dt.datetime


class ResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    new_password: NewPassword


def user_out(u: User) -> UserOut:
    return UserOut(u.id, u.email, u.display_name, u.role, u.created_at)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", status_code=200)
    async def login(self, request: Request[object, object, State], data: LoginBody, db: AsyncSession, state: State) -> TokenOut:
        """Exchange e-mail and password for an access token (EdDSA JWT, 15 min) and a refresh token."""
        campus = await service.resolve_campus(
            db, data.campus, request.headers.get("host", ""), uuid.UUID(state.settings.campus.id)
        )
        who = await service.sign_in(db, campus, data.email, data.password)
        issuer: tokens.TokenIssuer = state.issuer
        return TokenOut(issuer.issue(who), "Bearer", tokens.ACCESS_TOKEN_TTL_S, await tokens.new_refresh_token(db, who))

    @post("/refresh", status_code=200)
    async def refresh(self, data: RefreshBody, db: AsyncSession, state: State) -> TokenOut:
        """Rotate a refresh token. Reusing an old one revokes the whole family (all its sessions)."""
        who, next_token = await tokens.rotate(db, data.refresh_token)
        issuer: tokens.TokenIssuer = state.issuer
        return TokenOut(issuer.issue(who), "Bearer", tokens.ACCESS_TOKEN_TTL_S, next_token)

    @post("/logout", status_code=204)
    async def logout(self, data: RefreshBody, db: AsyncSession) -> None:
        """Revoke this sign-in (its refresh-token family). Access tokens lapse within 15 minutes."""
        await tokens.logout(db, data.refresh_token)

    @get("/jwks.json")
    async def jwks(self, state: State) -> dict[str, object]:
        """Public keys that verify this deployment's tokens (used by the gateway)."""
        issuer: tokens.TokenIssuer = state.issuer
        return issuer.jwks()

    @post("/password-reset/confirm", status_code=204)
    async def reset_confirm(self, data: ResetConfirm, db: AsyncSession) -> None:
        """Set a new password with a one-time reset token; ends every session of the account."""
        await service.finish_password_reset(db, data.token, data.new_password)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]

    @get("/")
    async def me(self, identity: Identity) -> MeOut:
        """The signed-in account."""
        return MeOut(
            identity.user_id, identity.campus_id, identity.email, identity.display_name, identity.role,
            identity.platform_admin,
        )


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get("/")
    async def list_users(
        self,
        db: AsyncSession,
        identity: Identity,
        cursor: pagination.Cursor = None,
        limit: pagination.Limit = None,
        role: Literal["learner", "instructor", "admin"] | None = None,
    ) -> UserPage:
        """Accounts of your campus (campus admins)."""
        page = await service.list_users(db, identity, cursor, limit, role)
        return UserPage([user_out(u) for u in page.items], page.next_cursor)

    @post("/")
    async def create_user(self, db: AsyncSession, identity: Identity, data: UserIn) -> Response[UserOut]:
        """Create an account on your campus (campus admins)."""
        user = await service.create_user(db, identity, data.email, data.display_name, data.role, data.password)
        return Response(user_out(user), status_code=201)

    @get("/{user_id:uuid}")
    async def get_user(self, db: AsyncSession, identity: Identity, user_id: uuid.UUID) -> UserOut:
        return user_out(await service.get_user(db, identity, user_id))

    @post("/{user_id:uuid}/password-reset", status_code=201)
    async def password_reset(self, db: AsyncSession, identity: Identity, user_id: uuid.UUID) -> ResetOut:
        """Make a one-time password reset token for an account (campus admins), valid 2 hours."""
        token, expires = await service.start_password_reset(db, identity, user_id)
        return ResetOut(token, expires)
