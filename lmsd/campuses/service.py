from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.db.models import Campus
from lmsd.errors import Conflict
from lmsd.identity.service import ensure_admin
from lmsd.policy import Identity


async def create_campus(
    session: AsyncSession, actor: Identity, name: str, host: str, admin_email: str, admin_password: str
) -> Campus:
    """A new tenant with its first (campus-only) administrator."""
    policy.require(actor, "campus.manage")
    if await session.scalar(select(Campus.id).where(Campus.host == host.lower())):
        raise Conflict(f"another campus already uses host {host!r}")
    campus = Campus(id=uuid.uuid4(), name=name, host=host.lower())
    session.add(campus)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("campus exists") from None
    await ensure_admin(session, campus.id, admin_email, admin_password, platform_admin=False)
    return campus


async def list_campuses(session: AsyncSession, actor: Identity) -> list[Campus]:
    """Platform admins see every campus; anyone else sees their own."""
    query = select(Campus).order_by(Campus.name)
    if not policy.allowed(actor, "campus.manage"):
        query = query.where(Campus.id == actor.campus_id)
    return list((await session.scalars(query)).all())
