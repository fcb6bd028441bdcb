"""Citus hooks: distribute tables per the plan when the extension is installed, no-op otherwise.

Migrations call :func:`distribute` after creating tables, so the same migration runs unchanged on
plain PostgreSQL (embedded profile) and on a Citus coordinator. ``lmsd db distribute`` calls
:func:`distribute_existing` to move a campus migrated without Citus onto a cluster.

What a real Citus 13 cluster accepts (docs/citus.md, verified by tests/citus):

- ``create_distributed_table`` of a table that local tables still reference is refused, and so
  is distributing a table that references a local one. So the foreign keys that touch the tables
  being distributed are dropped first, the tables distributed (reference tables, then the
  colocation anchor ``users``, then the rest colocated with it) and the keys added back as they
  were. (A new local table may reference an already distributed one: 0006 and 0008 create
  theirs with their keys, then go through the same drop, distribute, re-add.)
- a table with triggers is refused (``citus.enable_unsafe_triggers`` would fire them on the
  workers' shards, where nobody listens to a NOTIFY, and a NOTIFY cannot be part of the two-phase
  commit Citus uses across nodes): the triggers are dropped. The only one, ``outbox_notify``,
  woke the relay; on Citus the relay polls (``events.relay_poll_ms``);
- everything runs in the migration's transaction, in sequential mode: a transaction that has
  used a reference table cannot then open parallel connections to the workers;
- the rows of a table are copied to its shards, then the coordinator's copy is truncated.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from lmsd.db.models import CITUS_DISTRIBUTED, CITUS_REFERENCE

COLOCATE_WITH = "users"


def citus_present(bind: Connection | None = None) -> bool:
    bind = bind or op.get_bind()
    return bool(bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).scalar())


def distribute(tables: list[str]) -> None:
    """Make ``tables`` reference or distributed tables per the plan in lmsd.db.models (in a
    migration, on the migration's connection)."""
    bind = op.get_bind()
    if citus_present(bind):
        distribute_tables(bind, tables)


def distribute_existing(bind: Connection) -> list[str]:
    """Every table of the plan that is not a Citus table yet, distributed with its data (a campus
    migrated without Citus, the extension created and the workers added since). Returns the
    tables distributed, in order; nothing when all are (idempotent)."""
    if not citus_present(bind):
        raise RuntimeError("the citus extension is not installed in this database")
    present = {
        str(name)
        for name in bind.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(:t)"),
            {"t": [*CITUS_REFERENCE, *CITUS_DISTRIBUTED]},
        ).scalars()
    }
    return distribute_tables(bind, [t for t in (*CITUS_REFERENCE, *CITUS_DISTRIBUTED) if t in present])


def _placed(bind: Connection) -> dict[str, str]:
    """The tables Citus already manages and how: distributed, reference or (citus) local."""
    rows = bind.execute(text("SELECT table_name::text, citus_table_type FROM citus_tables"))
    return {str(name): str(kind) for name, kind in rows}


def _order(tables: Iterable[str]) -> list[str]:
    """Reference tables, the colocation anchor, then the others (as given)."""
    wanted = list(dict.fromkeys(tables))
    unplanned = [t for t in wanted if t not in CITUS_REFERENCE and t not in CITUS_DISTRIBUTED]
    if unplanned:
        raise ValueError(f"not in the Citus plan (lmsd/db/models/distribution.py): {', '.join(unplanned)}")
    refs = [t for t in wanted if t in CITUS_REFERENCE]
    anchor = [t for t in wanted if t == COLOCATE_WITH]
    rest = [t for t in wanted if t in CITUS_DISTRIBUTED and t != COLOCATE_WITH]
    return refs + anchor + rest


def distribute_tables(bind: Connection, tables: Iterable[str]) -> list[str]:
    """Distribute those of ``tables`` Citus does not distribute yet (see the module's docstring)."""
    placed = _placed(bind)
    todo = [t for t in _order(tables) if placed.get(t) not in ("distributed", "reference")]
    if not todo:
        return []
    bind.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
    keys = bind.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND (conrelid::regclass::text = ANY(:t) OR confrelid::regclass::text = ANY(:t)) "
            "ORDER BY conrelid::regclass::text, conname"
        ),
        {"t": todo},
    ).all()
    for table, name, _ in keys:
        bind.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    triggers = bind.execute(
        text("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY(:t)"),
        {"t": todo},
    ).all()
    for table, name in triggers:
        bind.execute(text(f'DROP TRIGGER "{name}" ON "{table}"'))
    for table in todo:
        if table in CITUS_REFERENCE:
            bind.execute(text("SELECT create_reference_table(:t)"), {"t": table})
        else:
            anchor = table == COLOCATE_WITH or (COLOCATE_WITH not in placed and COLOCATE_WITH not in todo)
            bind.execute(
                text("SELECT create_distributed_table(:t, :c, colocate_with => :w)"),
                {"t": table, "c": CITUS_DISTRIBUTED[table], "w": "default" if anchor else COLOCATE_WITH},
            )
        # the rows were copied to the shards; the coordinator's own copy is dead weight
        bind.execute(text("SELECT truncate_local_data_after_distributing_table(:t)"), {"t": table})
    for table, name, definition in keys:
        bind.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
    return todo
