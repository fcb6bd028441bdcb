"""The transactional outbox: a service's change and its events commit in one transaction.

``append`` runs inside the caller's transaction. It gives each event the next version of its
aggregate (optimistic concurrency: a caller may name the version it expects and gets
``Conflict`` when another writer got there first) and writes the encoded envelopes into
``outbox``. The relay (:mod:`lmsd.events.relay`) publishes them after commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.db import values
from lmsd.errors import Conflict
from lmsd.events.envelope import NewEvent, micros

AggregateKey = tuple[uuid.UUID, str, uuid.UUID]  # campus, aggregate, id

# Small appends as multi-row VALUES (one phase on Citus), larger ones as arrays and COPY
# (lmsd.db.values). The rows go in key order: concurrent writers lock shared aggregates in one order.
_ALLOCATE = """
INSERT INTO event_aggregates AS a (campus_id, aggregate, aggregate_id, version)
{rows}
ON CONFLICT (campus_id, aggregate, aggregate_id) DO UPDATE SET version = a.version + excluded.version
RETURNING campus_id, aggregate, aggregate_id, version
"""
_ALLOCATE_ROW = "($::uuid, $::text, $::uuid, $::bigint)"
COLUMNS = ["campus_id", "id", "subject", "aggregate", "aggregate_id", "version", "payload"]
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
    rows_in, params = values.source(_ALLOCATE_ROW, [(*k, counts[k]) for k in keys])
    rows = await conn.fetch(_ALLOCATE.format(rows=rows_in), *params)
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
    if len(records) <= values.SMALL:
        rows_in, params = values.source(_INSERT_ROW, records)
        await conn.execute(f"INSERT INTO outbox ({', '.join(COLUMNS)}) {rows_in}", *params)
    else:  # COPY: cheaper still than arrays for the large ones
        await conn.copy_records_to_table("outbox", records=records, columns=COLUMNS)
    return versions


async def record(session: AsyncSession, *events: NewEvent) -> None:
    """For services on the ORM session: record events in the request's transaction."""
    await append(await driver_connection(session), list(events))
