"""The transactional outbox: a service's change and its events commit in one transaction.

``append`` runs inside the caller's transaction. It gives each event the next version of its
aggregate (optimistic concurrency: a caller may name the version it expects and gets
``Conflict`` when another writer got there first) and inserts the encoded envelopes into
``outbox``. The relay (:mod:`lmsd.events.relay`) publishes them after commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.db.values import chunks, rows_sql
from lmsd.errors import Conflict
from lmsd.events.envelope import NewEvent, micros

AggregateKey = tuple[uuid.UUID, str, uuid.UUID]  # campus, aggregate, id

# Multi-row VALUES (lmsd.db.values): one phase on Citus. The rows go in key order, so concurrent
# writers lock the aggregates they share in the same order.
_ALLOCATE = """
INSERT INTO event_aggregates AS a (campus_id, aggregate, aggregate_id, version)
VALUES {rows}
ON CONFLICT (campus_id, aggregate, aggregate_id) DO UPDATE SET version = a.version + excluded.version
RETURNING campus_id, aggregate, aggregate_id, version
"""
_ALLOCATE_ROW = "($::uuid, $::text, $::uuid, $::bigint)"
_INSERT = "INSERT INTO outbox (campus_id, id, subject, aggregate, aggregate_id, version, payload) VALUES {rows}"
_INSERT_ROW = "($::uuid, $::uuid, $::text, $::text, $::uuid, $::bigint, $::bytea)"


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's primary connection, inside its transaction."""
    conn = await session.connection()  # pins the routing session to the primary
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's adapter opens the transaction at its first statement: make that happen
        # now, or statements sent straight to the driver would each commit on their own
        await conn.exec_driver_sql("SELECT 1")
    return driver


async def append(
    conn: asyncpg.Connection,
    events: list[NewEvent],
    expected: dict[AggregateKey, int] | None = None,
) -> dict[AggregateKey, int]:
    """Record ``events`` (in order) in the outbox; returns each aggregate's new version."""
    if not events:
        return {}
    counts: dict[AggregateKey, int] = defaultdict(int)
    for event in events:
        counts[(event.campus_id, event.aggregate, event.aggregate_id)] += 1
    keys = sorted(counts)
    rows = []
    for n, params in chunks([(*k, counts[k]) for k in keys]):
        rows += await conn.fetch(_ALLOCATE.format(rows=rows_sql(_ALLOCATE_ROW, n)), *params)
    versions = {(r["campus_id"], r["aggregate"], r["aggregate_id"]): int(r["version"]) for r in rows}
    for key, want in (expected or {}).items():
        before = versions.get(key, 0) - counts.get(key, 0)
        if key in counts and before != want:
            raise Conflict(
                f"{key[1]} {key[2]} is at version {before}, not {want}: another writer came first; "
                "reload and retry"
            )
    next_version = {k: versions[k] - counts[k] for k in keys}
    now = micros(None)
    records = []
    for event in events:
        key = (event.campus_id, event.aggregate, event.aggregate_id)
        next_version[key] += 1
        payload = event.envelope(next_version[key], now).SerializeToString()
        records.append(
            (event.campus_id, event.event_id, event.subject, event.aggregate, event.aggregate_id,
             next_version[key], payload)
        )
    for n, params in chunks(records):
        await conn.execute(_INSERT.format(rows=rows_sql(_INSERT_ROW, n)), *params)
    return versions


async def record(session: AsyncSession, *events: NewEvent) -> None:
    """For services on the ORM session: record events in the request's transaction."""
    await append(await driver_connection(session), list(events))
