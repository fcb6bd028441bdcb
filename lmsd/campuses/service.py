from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.db.models import Campus
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.identity.service import ensure_admin
from lmsd.policy import Identity


async def create_campus(
    session: AsyncSession, actor: Identity, name: str, host: str, admin_email: str, admin_password: str
) -> Campus:
    """A new tenant with its first (campus-only) administrator."""
    policy.require(actor, "campus.manage")
    if await session.scalar(select(Campus.id).where(Campus.host == host.lower())):
        raise Conflict(f"another campus already uses host {host!r}", field="host", code="campus.host_taken")
    campus = Campus(id=uuid.uuid4(), name=name, host=host.lower())
    session.add(campus)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("campus exists", code="campus.exists") from None
    await ensure_admin(session, campus.id, admin_email, admin_password, platform_admin=False)
    return campus


async def list_campuses(session: AsyncSession, actor: Identity) -> list[Campus]:
    """Platform admins see every campus; anyone else sees their own."""
    query = select(Campus).order_by(Campus.name)
    if not policy.allowed(actor, "campus.manage"):
        query = query.where(Campus.id == actor.campus_id)
    return list((await session.scalars(query)).all())


# -- the portal's branding: name, language of anonymous pages, logo ---------------------------

LOGO_MAX_BYTES = 256 * 1024
NAME_MAX = 200  # a campus's name (the API's CampusIn states the same)
LOCALES = ("en", "fr", "es")
_SVG_DANGER = re.compile(rb"<script|javascript:|\bon[a-z]+\s*=|<foreignobject|<!entity", re.IGNORECASE)


def logo_type(data: bytes) -> str | None:
    """The image type of a logo by its first bytes (never by its file name), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if (head.startswith((b"<?xml", b"<svg", b"<!--")) or head.startswith(b"<!doctype svg")) and b"<svg" in data[:4096].lower():
        return "image/svg+xml"
    return None


def svg_is_safe(data: bytes) -> bool:
    """No script in any of its forms (elements, event attributes, javascript: URLs), no
    embedded HTML and no entity declarations. Served with ``default-src 'none'`` anyway."""
    return _SVG_DANGER.search(data) is None


def branding_problems(name: str, default_locale: str) -> list[Invalid]:
    """Every rule a campus's name and language break (a form shows them all at once)."""
    problems: list[Invalid] = []
    name = name.strip()
    if not name:
        problems.append(Invalid("enter the campus name", field="name", code="campus.name_missing"))
    elif len(name) > NAME_MAX:
        problems.append(Invalid(f"a campus name has at most {NAME_MAX} characters", field="name", code="campus.name_too_long"))
    if default_locale not in LOCALES:
        problems.append(Invalid(
            f"default_locale must be one of {', '.join(LOCALES)}", field="default_locale", code="campus.locale_unknown"
        ))
    return problems


async def update_branding(session: AsyncSession, actor: Identity, name: str, default_locale: str) -> Campus:
    """Rename the actor's campus and set the language of its pages for visitors not signed in."""
    policy.require(actor, "campus.brand")
    for problem in branding_problems(name, default_locale):
        raise problem
    name = name.strip()
    campus = await session.get(Campus, actor.campus_id)
    if campus is None:
        raise NotFound("no such campus")
    campus.name, campus.default_locale = name, default_locale
    await session.flush()
    return campus


async def set_logo(session: AsyncSession, actor: Identity, data: bytes | None) -> str | None:
    """Replace the campus logo (PNG, JPEG, WebP or script-free SVG, at most 256 KiB), or remove
    it with ``None``. Returns the stored type."""
    policy.require(actor, "campus.brand")
    kind = None
    if data is not None:
        if len(data) > LOGO_MAX_BYTES:
            raise Invalid(f"a logo may have at most {LOGO_MAX_BYTES // 1024} KiB", field="logo", code="campus.logo_too_large")
        kind = logo_type(data)
        if kind is None:
            raise Invalid("a logo must be a PNG, JPEG, WebP or SVG image", field="logo", code="campus.logo_type")
        if kind == "image/svg+xml" and not svg_is_safe(data):
            raise Invalid("an SVG logo may not contain scripts or event handlers", field="logo", code="campus.logo_unsafe")
    digest = hashlib.sha256(data).hexdigest()[:32] if data is not None else None
    await session.execute(
        update(Campus).where(Campus.id == actor.campus_id).values(logo=data, logo_type=kind, logo_hash=digest)
    )
    return kind


@dataclass(frozen=True)
class Branding:
    """What every portal page shows of its campus (public: the sign-in page shows it too)."""

    id: uuid.UUID
    name: str
    has_logo: bool
    default_locale: str
    logo_hash: str  # "" without a logo; pages link the logo with it so a new one is not cached


async def branding_of(session: AsyncSession, campus_id: uuid.UUID) -> Branding:
    """A campus's name, default language and whether it has a logo."""
    row = (
        await session.execute(
            select(Campus.id, Campus.name, Campus.logo_type, Campus.default_locale, Campus.logo_hash)
            .where(Campus.id == campus_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no such campus")
    return Branding(row.id, row.name, row.logo_type is not None, row.default_locale, row.logo_hash or "")


async def logo_of(session: AsyncSession, campus_id: uuid.UUID) -> tuple[bytes, str, str] | None:
    """A campus's logo, its type and its hash (public: the sign-in page shows it)."""
    row = (
        await session.execute(
            select(Campus.logo, Campus.logo_type, Campus.logo_hash).where(Campus.id == campus_id)
        )
    ).one_or_none()
    if row is None or row.logo is None or row.logo_type is None:
        return None
    return bytes(row.logo), row.logo_type, row.logo_hash or ""
