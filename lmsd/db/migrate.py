"""Alembic, driven from code: the only way the schema changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from lmsd.credentials import Secrets
from lmsd.db.dsn import connect_args, engine_url
from lmsd.errors import OperationFailed
from lmsd.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(settings: Settings, secrets: Secrets) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    locations = [str(MIGRATIONS / "versions"), *settings.postgres.extra_migrations]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["url"] = engine_url(settings, secrets)
    cfg.attributes["connect_args"] = connect_args(settings)
    return cfg


def head(settings: Settings, secrets: Secrets) -> str:
    script = ScriptDirectory.from_config(alembic_config(settings, secrets))
    return script.get_current_head() or ""


def upgrade(settings: Settings, secrets: Secrets) -> str:
    """Upgrade to head. Returns the revision reached; raises OperationFailed with the reason."""
    try:
        command.upgrade(alembic_config(settings, secrets), "head")
    except Exception as exc:  # noqa: BLE001 - any failure of a migration is reported the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OperationFailed(f"migration failed: {reason}") from exc
    return asyncio.run(current(settings, secrets))


async def current(settings: Settings, secrets: Secrets) -> str:
    engine = create_async_engine(engine_url(settings, secrets), connect_args=connect_args(settings))
    try:
        async with engine.connect() as conn:
            rev = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()
    return rev or ""
