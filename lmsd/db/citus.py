"""Citus hooks for migrations: distribute tables when the extension is installed, no-op otherwise.

Migrations call these after creating tables, so the same migration runs unchanged on plain
PostgreSQL (embedded profile) and on a Citus coordinator (helm profile).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from lmsd.db.models import CITUS_DISTRIBUTED, CITUS_REFERENCE

COLOCATE_WITH = "users"


def citus_present() -> bool:
    bind = op.get_bind()
    return bool(bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).scalar())


def distribute(tables: list[str]) -> None:
    """Make ``tables`` reference or distributed tables per the plan in lmsd.db.models."""
    if not citus_present():
        return
    bind = op.get_bind()
    for table in tables:
        if table in CITUS_REFERENCE:
            bind.execute(text("SELECT create_reference_table(:t)"), {"t": table})
        else:
            column = CITUS_DISTRIBUTED[table]
            colocate = "default" if table == COLOCATE_WITH else COLOCATE_WITH
            bind.execute(
                text("SELECT create_distributed_table(:t, :c, colocate_with => :w)"),
                {"t": table, "c": column, "w": colocate},
            )
