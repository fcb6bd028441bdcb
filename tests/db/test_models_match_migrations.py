"""The models (lmsd.db.models, one metadata across its modules) and the migrations describe the
same schema: autogenerate, run against a freshly migrated database, finds nothing to do."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from lmsd.db.engine import make_engine
from lmsd.db.models import Base
from tests.db import Database


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_autogenerate_finds_no_difference_between_models_and_migrations(database: Database) -> None:
    assert {"campuses", "users", "courses", "quizzes", "enrolments", "outbox", "videos"} <= set(Base.metadata.tables)
    engine = make_engine(database.settings, database.secrets, pool_size=1)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ (write a migration): {diff}"
