"""Access tokens (EdDSA JWTs, 15 min) and rotating refresh tokens (30 days).

Refresh tokens form families: each use returns a new token and marks the old one used. Using a
used token again means it was stolen (or replayed), so the whole family is revoked at once.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.credentials import Secrets
from lmsd.db.models import RefreshToken, User
from lmsd.errors import Invalid, Unauthorized
from lmsd.identity.service import campus_of_token, identity_of, token_hash
from lmsd.policy import Identity

ACCESS_TOKEN_TTL_S = 900
REFRESH_TTL = dt.timedelta(days=30)


class TokenIssuer:
    """Signs short-lived access tokens with the deployment's key (EdDSA) and publishes the JWKS."""

    def __init__(self, secrets_: Secrets, issuer: str) -> None:
        key = serialization.load_pem_private_key(secrets_.jwt_signing_key_pem.encode(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise Invalid("the signing key is not an Ed25519 key")
        self._key = key
        self._kid = secrets_.jwt_key_id
        self.issuer = issuer

    def issue(self, who: Identity) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": "lmsd",
            "sub": str(who.user_id),
            "campus": str(who.campus_id),
            "role": who.role,
            "email": who.email,
            "name": who.display_name,
            "padm": who.platform_admin,
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL_S,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})

    def verify(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["EdDSA"],
                audience="lmsd",
                issuer=self.issuer,
                options={"require": ["exp", "sub", "campus", "role"]},
            )
            return Identity(
                user_id=uuid.UUID(str(claims["sub"])),
                campus_id=uuid.UUID(str(claims["campus"])),
                email=str(claims.get("email", "")),
                display_name=str(claims.get("name", "")),
                role=str(claims["role"]),
                platform_admin=bool(claims.get("padm", False)),
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized(f"invalid token: {exc}", code="token.invalid") from None

    def jwks(self) -> dict[str, object]:
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=self._kid, use="sig", alg="EdDSA")
        return {"keys": [jwk]}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def new_refresh_token(session: AsyncSession, who: Identity, family: uuid.UUID | None = None) -> str:
    token = f"{who.campus_id}.{secrets.token_urlsafe(32)}"
    session.add(
        RefreshToken(
            campus_id=who.campus_id, user_id=who.user_id, family_id=family or uuid.uuid4(),
            token_hash=token_hash(token), expires_at=_now() + REFRESH_TTL,
        )
    )
    await session.flush()
    return token


async def rotate(session: AsyncSession, token: str) -> tuple[Identity, str]:
    """Exchange a refresh token for (identity, next refresh token); detect reuse."""
    campus_id = campus_of_token(token)
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.campus_id == campus_id, RefreshToken.token_hash == token_hash(token))
        .with_for_update()
    )
    if row is None or row.revoked_at is not None or row.expires_at <= _now():
        raise Unauthorized("refresh token invalid, expired or revoked; sign in again", code="token.refresh_invalid")
    if row.used_at is not None:
        await revoke_family(session, campus_id, row.family_id)
        await session.commit()  # the revocation must stand although this request fails
        raise Unauthorized("refresh token was already used: every session of this sign-in is revoked", code="token.refresh_reused")
    user = await session.get(User, (campus_id, row.user_id))
    if user is None:
        raise Unauthorized("account no longer exists", code="token.account_gone")
    row.used_at = _now()
    who = identity_of(user)
    return who, await new_refresh_token(session, who, row.family_id)


async def revoke_family(session: AsyncSession, campus_id: uuid.UUID, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.campus_id == campus_id, RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def logout(session: AsyncSession, token: str) -> None:
    """Revoke the family of this refresh token (unknown tokens are ignored: logout is idempotent)."""
    try:
        campus_id = campus_of_token(token)
    except Unauthorized:
        return
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.campus_id == campus_id, RefreshToken.token_hash == token_hash(token))
    )
    if row is not None:
        await revoke_family(session, campus_id, row.family_id)
