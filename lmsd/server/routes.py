"""The routes the core answers itself: the health probe and the campus's public facts."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from sqlalchemy import text

import lmsd
from lmsd.server.errors import problem
from lmsd.settings import Settings


@get("/healthz", include_in_schema=False)
async def healthz(state: State) -> object:
    """Liveness and readiness in one: the database answers and the schema revision is known."""
    try:
        async with state.engine.connect() as conn:
            schema = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # noqa: BLE001 - any database failure makes the worker unhealthy
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
            return problem(503, "Unavailable", "database unreachable", version=lmsd.__version__)
        schema = "none (not migrated)"
    return {"status": "ok", "service": "lmsd-api", "version": lmsd.__version__, "database": "ok", "schema": schema}


@get("/api/v1/campus")
async def campus_info(state: State) -> dict[str, str]:
    """Public facts about this campus, for the portal and federation peers."""
    settings: Settings = state.settings
    return {"id": settings.campus.id, "name": settings.campus.name, "host": settings.campus.host}


__all__ = ["campus_info", "healthz"]
