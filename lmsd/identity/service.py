"""Accounts and sign-in. Owns its queries and transactions; raises domain errors only."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.credentials import Secrets
from lmsd.db.models import Campus, User
from lmsd.errors import Invalid, Unauthorized

ROLES = ("learner", "instructor", "admin")
ACCESS_TOKEN_TTL_S = 900
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("lmsd-timing-equaliser")


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise Invalid("a password needs at least 12 characters")
    return _hasher.hash(password)


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    campus_id: uuid.UUID
    email: str
    display_name: str
    role: str


async def ensure_campus(session: AsyncSession, campus_id: uuid.UUID, name: str, host: str) -> Campus:
    campus = await session.get(Campus, campus_id)
    if campus is None:
        campus = Campus(id=campus_id, name=name, host=host)
        session.add(campus)
    else:
        campus.name, campus.host = name, host
    await session.flush()
    return campus


async def ensure_admin(
    session: AsyncSession, campus_id: uuid.UUID, email: str, password: str
) -> tuple[User, bool]:
    """Create the campus's first admin unless that account exists. Returns (user, created)."""
    existing = await session.scalar(
        select(User).where(User.campus_id == campus_id, User.email == email.lower())
    )
    if existing is not None:
        return existing, False
    user = User(
        campus_id=campus_id,
        email=email.lower(),
        display_name="Administrator",
        password_hash=hash_password(password),
        role="admin",
    )
    session.add(user)
    await session.flush()
    return user, True


async def authenticate(
    session: AsyncSession, campus_id: uuid.UUID, email: str, password: str
) -> Identity:
    user = await session.scalar(
        select(User).where(User.campus_id == campus_id, User.email == email.strip().lower())
    )
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("wrong e-mail or password") from None
    if user is None:
        raise Unauthorized("wrong e-mail or password")
    return Identity(user.id, user.campus_id, user.email, user.display_name, user.role)


class TokenIssuer:
    """Signs short-lived access tokens with the campus key (EdDSA) and publishes the JWKS."""

    def __init__(self, secrets: Secrets, issuer: str) -> None:
        key = serialization.load_pem_private_key(secrets.jwt_signing_key_pem.encode(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise Invalid("the campus signing key is not an Ed25519 key")
        self._key = key
        self._kid = secrets.jwt_key_id
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
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL_S,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})

    def verify(self, token: str) -> dict[str, object]:
        try:
            return jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["EdDSA"],
                audience="lmsd",
                issuer=self.issuer,
                options={"require": ["exp", "sub", "campus", "role"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None

    def jwks(self) -> dict[str, object]:
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=self._kid, use="sig", alg="EdDSA")
        return {"keys": [jwk]}
