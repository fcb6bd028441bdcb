"""Multi-row ``INSERT ... VALUES`` for the hot batch writes (outbox, claims).

A batch of one campus written as ``INSERT ... VALUES (...), (...)`` is one statement that Citus
routes to the campus's shard and commits in one phase with the rest of the transaction. The same
rows as ``INSERT ... SELECT FROM unnest(...)`` or ``COPY`` go through the coordinator as a COPY,
and Citus commits every transaction that copies in two phases (PREPARE TRANSACTION on the worker,
a row in ``pg_dist_transaction``, COMMIT PREPARED): several times the database's work per batch
(docs/citus.md, "One phase for the hot batch writes"). Plain PostgreSQL takes either form.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

MAX_PARAMETERS = 32_767  # per statement (the protocol's limit is 65,535; half keeps plans small)


@lru_cache(maxsize=512)
def rows_sql(row: str, count: int) -> str:
    """``count`` copies of ``row`` (a row with ``$`` for each parameter, e.g. ``($::uuid, $)``),
    comma-separated, the parameters numbered ``$1`` onwards in order."""
    parts = row.split("$")
    per_row = len(parts) - 1
    out = []
    for r in range(count):
        base = r * per_row
        out.append(parts[0] + "".join(f"${base + i + 1}{part}" for i, part in enumerate(parts[1:])))
    return ", ".join(out)


def chunks(rows: Sequence[Sequence[Any]]) -> Iterator[tuple[int, list[Any]]]:
    """``rows`` in slices of at most MAX_PARAMETERS parameters: (row count, flat parameters)."""
    if not rows:
        return
    size = max(1, MAX_PARAMETERS // len(rows[0]))
    for start in range(0, len(rows), size):
        part = rows[start:start + size]
        yield len(part), [value for row in part for value in row]
