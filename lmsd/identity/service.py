"""Accounts and sign-in. Owns its queries and transactions; raises domain errors only."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import re
import secrets
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination, policy
from lmsd.db.models import Campus, PasswordReset, RefreshToken, User
from lmsd.errors import Conflict, Invalid, NotFound, TooManyRequests, Unauthorized
from lmsd.policy import Identity

__all__ = ["Identity", "authenticate", "ensure_admin", "ensure_campus", "hash_password", "identity_of"]

ROLES = ("learner", "instructor", "admin")
LOCK_AFTER_FAILURES = 5
RESET_TTL = dt.timedelta(hours=2)
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Argon2 is deliberately slow (tens of ms, tens of MiB): hashing and verifying run in a worker
# thread (argon2-cffi releases the GIL), never on the event loop, and never under a row lock.


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this keeps the time of "no such user" equal to "wrong password".
    Made on first use, not at import: every process that imports this module (the CLI's every
    command, each worker) would otherwise pay for an Argon2 hash it may never need."""
    return _hasher.hash("lmsd-timing-equaliser")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The rules of an account's fields: the API's schemas (identity.controller) and the portal's forms
# take their limits from here, and the service checks them whatever the entry point.
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
EMAIL_MAX = 320
# Not "@" nor white space, as Python and ECMAScript (the OpenAPI document's readers) both count it:
# Python's \s adds \x1c-\x1f and \x85, ECMAScript's adds \ufeff.
EMAIL_PATTERN = r"^[^@\s\x1c-\x1f\x85\ufeff]+@[^@\s\x1c-\x1f\x85\ufeff]+$"
DISPLAY_NAME_MAX = 200
_EMAIL = re.compile(EMAIL_PATTERN)


def password_problems(password: str) -> list[Invalid]:
    """Why ``password`` cannot be a new password (empty: it can)."""
    if len(password) < PASSWORD_MIN:
        return [Invalid(f"a password needs at least {PASSWORD_MIN} characters", field="password", code="user.password_too_short")]
    if len(password) > PASSWORD_MAX:
        return [Invalid(f"a password may have at most {PASSWORD_MAX} characters", field="password", code="user.password_too_long")]
    return []


def user_problems(email: str, display_name: str, role: str, password: str) -> list[Invalid]:
    """Every rule a new account breaks (a form shows them all at once); empty when it is valid.
    The same rules as the API's schema states (``UserIn``), so the API refuses nothing more."""
    problems: list[Invalid] = []
    if not email:
        problems.append(Invalid("enter an e-mail address", field="email", code="user.email_missing"))
    elif len(email) > EMAIL_MAX or not _EMAIL.match(email):
        problems.append(Invalid("this is not an e-mail address", field="email", code="user.email_invalid"))
    problems.extend(_display_name_problems(display_name))
    if role not in ROLES:
        problems.append(Invalid(f"role must be one of {', '.join(ROLES)}", field="role", code="user.role_unknown"))
    return problems + password_problems(password)


async def hash_password(password: str) -> str:
    """The Argon2id hash of a new password (checked first), computed off the event loop."""
    for problem in password_problems(password):
        raise problem
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches (blocking: call it through :func:`asyncio.to_thread`)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def identity_of(user: User) -> Identity:
    return Identity(user.id, user.campus_id, user.email, user.display_name, user.role, user.platform_admin)


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
    session: AsyncSession, campus_id: uuid.UUID, email: str, password: str, *, platform_admin: bool = True
) -> tuple[User, bool]:
    """Create a campus's first admin unless that account exists. Returns (user, created)."""
    existing = await session.scalar(
        select(User).where(User.campus_id == campus_id, User.email == email.lower())
    )
    if existing is not None:
        return existing, False
    user = User(
        campus_id=campus_id,
        email=email.lower(),
        display_name="Administrator",
        password_hash=await hash_password(password),
        role="admin",
        platform_admin=platform_admin,  # the installer's admin also operates the deployment
    )
    session.add(user)
    await session.flush()
    return user, True


async def resolve_campus(session: AsyncSession, wanted: uuid.UUID | None, host: str, default: uuid.UUID) -> uuid.UUID:
    """The campus a sign-in is for: named explicitly, else by the host name asked for, else the default."""
    if wanted is not None:
        if await session.get(Campus, wanted) is None:
            raise Unauthorized("wrong e-mail or password", code="auth.wrong_password")
        return wanted
    by_host = await session.scalar(select(Campus.id).where(Campus.host == host.split(":")[0].lower()).limit(2))
    return by_host or default


async def authenticate(session: AsyncSession, campus_id: uuid.UUID, email: str, password: str) -> Identity:
    """Check a password. Repeated failures lock the account for a growing while (429).

    The attempt is counted as a failure first, under a short row lock that is committed at once:
    parallel guesses cannot outrun the lockout, and no lock is held while Argon2 runs (in a
    thread). A right password then clears the count, and a hash made with older parameters is
    replaced by one with the current parameters (both committed by the caller's unit of work).
    """
    user = await session.scalar(
        select(User)
        .where(User.campus_id == campus_id, User.email == email.strip().lower())
        .with_for_update()
    )
    if user is not None and user.locked_until is not None and user.locked_until > _now():
        wait = int((user.locked_until - _now()).total_seconds()) + 1
        raise TooManyRequests(f"too many failed sign-ins; try again in {wait} s", code="auth.locked_out")
    if user is not None:
        user.failed_logins += 1
        if user.failed_logins >= LOCK_AFTER_FAILURES:
            extra = min(2 ** (user.failed_logins - LOCK_AFTER_FAILURES), 15)
            user.locked_until = _now() + dt.timedelta(minutes=extra)
    await session.commit()  # the claim survives a failure, and the row lock ends here
    stored = user.password_hash if user is not None else await asyncio.to_thread(_dummy_hash)
    if not await asyncio.to_thread(_verify, stored, password) or user is None:
        raise Unauthorized("wrong e-mail or password", code="auth.wrong_password")
    await session.execute(
        update(User).where(User.campus_id == campus_id, User.id == user.id).values(failed_logins=0, locked_until=None)
    )
    if _hasher.check_needs_rehash(stored):
        rehashed = await asyncio.to_thread(_hasher.hash, password)
        # only if the password did not change meanwhile (a reset must not be undone)
        await session.execute(
            update(User)
            .where(User.campus_id == campus_id, User.id == user.id, User.password_hash == stored)
            .values(password_hash=rehashed)
        )
    return identity_of(user)


async def sign_in(session: AsyncSession, campus_id: uuid.UUID, email: str, password: str) -> Identity:
    try:
        return await authenticate(session, campus_id, email, password)
    except Unauthorized:
        await session.commit()  # keep the failure count: it is what throttles guessing
        raise


# -- accounts managed by campus admins ---------------------------------------------------------


async def create_user(
    session: AsyncSession, actor: Identity, email: str, display_name: str, role: str, password: str
) -> User:
    policy.require(actor, "user.create")
    for problem in user_problems(email, display_name, role, password):
        raise problem
    user = User(
        campus_id=actor.campus_id, email=email.strip().lower(), display_name=display_name,
        password_hash=await hash_password(password), role=role,
    )
    try:
        # A savepoint: a taken e-mail undoes this insert only, and the caller's session stays
        # usable (the portal shows its form again; the request still rolls back on the 4xx).
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise Conflict("an account with this e-mail already exists on this campus", field="email", code="user.email_taken") from None
    await session.refresh(user)
    return user


async def list_users(
    session: AsyncSession, actor: Identity, cursor: str | None, limit: int | None, role: str | None
) -> pagination.Page[User]:
    policy.require(actor, "user.list")
    size = pagination.limit_of(limit)
    after = pagination.decode(cursor)
    query = select(User).where(User.campus_id == actor.campus_id)
    if role is not None:
        query = query.where(User.role == role)
    if after is not None:
        query = query.where(User.id > after)
    rows = (await session.scalars(query.order_by(User.id).limit(size + 1))).all()
    return pagination.page_of(rows, size)


async def get_user(session: AsyncSession, actor: Identity, user_id: uuid.UUID) -> User:
    user = await session.get(User, (actor.campus_id, user_id))
    if user is None:
        raise NotFound("no such user")
    policy.require(actor, "user.read", policy.Relations(self_target=user_id == actor.user_id))
    return user


# -- password reset ------------------------------------------------------------------------------


async def start_password_reset(session: AsyncSession, actor: Identity, user_id: uuid.UUID) -> tuple[str, dt.datetime]:
    """An admin makes a one-time reset token for an account (to hand over or e-mail)."""
    user = await session.get(User, (actor.campus_id, user_id))
    if user is None:
        raise NotFound("no such user")
    policy.require(actor, "user.create")
    token = f"{user.campus_id}.{secrets.token_urlsafe(32)}"
    expires = _now() + RESET_TTL
    session.add(PasswordReset(campus_id=user.campus_id, user_id=user.id, token_hash=token_hash(token), expires_at=expires))
    await session.flush()
    return token, expires


async def finish_password_reset(session: AsyncSession, token: str, new_password: str) -> None:
    campus_id = campus_of_token(token)
    reset = await session.scalar(
        select(PasswordReset)
        .where(PasswordReset.campus_id == campus_id, PasswordReset.token_hash == token_hash(token))
        .with_for_update()
    )
    if reset is None or reset.used_at is not None or reset.expires_at <= _now():
        raise Unauthorized("this reset link is invalid or has expired", code="password_reset.invalid")
    user = await session.get(User, (campus_id, reset.user_id))
    assert user is not None
    user.password_hash = await hash_password(new_password)  # in a thread; the lock is this token's only
    user.failed_logins, user.locked_until = 0, None
    reset.used_at = _now()
    # A new password ends every existing session of the account.
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.campus_id == campus_id, RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    await session.flush()


def campus_of_token(token: str) -> uuid.UUID:
    """Opaque tokens start with their campus id, so lookups stay on the campus's shard."""
    try:
        return uuid.UUID(token.split(".", 1)[0])
    except ValueError:
        raise Unauthorized("malformed token", code="password_reset.invalid") from None


# -- the portal's account administration ---------------------------------------------------------


async def set_role(session: AsyncSession, actor: Identity, user_id: uuid.UUID, role: str) -> User:
    """Change an account's campus role. An admin cannot take the admin role from themselves
    (a campus must not lose its last way in by a slip); another admin has to."""
    user = await session.get(User, (actor.campus_id, user_id))
    if user is None:
        raise NotFound("no such user")
    policy.require(actor, "user.manage")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role", code="user.role_unknown")
    if user.id == actor.user_id and role != "admin":
        raise Conflict("you cannot remove your own admin role; another admin has to", field="role", code="user.own_admin_role")
    user.role = role
    await session.flush()
    return user


async def count_users(session: AsyncSession, actor: Identity) -> dict[str, int]:
    """How many accounts of each role the actor's campus has."""
    policy.require(actor, "user.list")
    rows = await session.execute(
        select(User.role, func.count()).where(User.campus_id == actor.campus_id).group_by(User.role)
    )
    counts = dict.fromkeys(ROLES, 0)
    counts.update({role: int(n) for role, n in rows.all()})
    return counts


# -- the signed-in person's own profile -----------------------------------------------------------

LOCALES = ("en", "fr", "es")  # the portal's shipped languages


def _display_name_problems(name: str) -> list[Invalid]:
    """The display-name rule, shared by accounts and profiles."""
    if not name:
        return [Invalid("enter a display name", field="display_name", code="user.display_name_missing")]
    if len(name) > DISPLAY_NAME_MAX:
        return [Invalid(
            f"a display name may have at most {DISPLAY_NAME_MAX} characters",
            field="display_name", code="user.display_name_too_long",
        )]
    return []


def profile_problems(display_name: str, locale: str) -> list[Invalid]:
    """Every rule a profile breaks (a form shows them all at once); empty when it is valid."""
    problems: list[Invalid] = []
    name = " ".join(display_name.split())
    problems.extend(_display_name_problems(name))
    if locale not in LOCALES:
        problems.append(Invalid(
            f"language must be one of {', '.join(LOCALES)}", field="language", code="user.locale_unknown"
        ))
    return problems


async def update_profile(session: AsyncSession, actor: Identity, display_name: str, locale: str) -> User:
    """Change one's own display name (spaces collapsed, 1 to 200 characters) and language."""
    user = await get_user(session, actor, actor.user_id)
    for problem in profile_problems(display_name, locale):
        raise problem
    user.display_name, user.locale = " ".join(display_name.split()), locale
    await session.flush()
    return user


async def set_locale(session: AsyncSession, actor: Identity, locale: str) -> None:
    """Remember the language one chose (the portal's language picker)."""
    if locale not in LOCALES:
        raise Invalid(f"language must be one of {', '.join(LOCALES)}", field="language", code="user.locale_unknown")
    user = await get_user(session, actor, actor.user_id)
    user.locale = locale
    await session.flush()


async def locale_of(session: AsyncSession, actor: Identity) -> str | None:
    """The language of one's own profile, None when not chosen (or the account is gone)."""
    return await session.scalar(
        select(User.locale).where(User.campus_id == actor.campus_id, User.id == actor.user_id)
    )

