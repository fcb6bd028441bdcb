"""The request's database session, as pages and controllers name it in their signatures.

Code outside the core (the portal above all) types the ``db`` dependency with
:data:`DbSession` instead of importing SQLAlchemy: what a session is stays the core's business.
"""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

DbSession: TypeAlias = AsyncSession


async def database_answers(db: DbSession) -> bool:
    """Whether the primary answers this worker's session (raw SQL goes to the primary)."""
    try:
        await db.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means the database does not answer
        return False
    return True
