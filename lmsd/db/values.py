"""Multi-row ``INSERT ... VALUES`` for small batch writes (the outbox, client event ids).

On Citus, a transaction that wrote through ``COPY`` commits in two phases (PREPARE TRANSACTION
on the worker, a row in ``pg_dist_transaction``, COMMIT PREPARED), and an ``INSERT ... SELECT
FROM unnest(...)`` is planned "pull to coordinator", which is a COPY. The same rows as
``INSERT ... VALUES (...), (...)`` are one statement that Citus routes to the campus's shard, and
the transaction commits in one phase. But a VALUES list costs its parse and plan per row:
measured with the event benchmark's 500-event batches, twice the database's CPU per event of
``COPY`` / ``unnest`` on plain PostgreSQL (docs/citus.md, "One phase for small writes"). So:
VALUES up to ``SMALL`` rows (an enrolment, a quiz attempt, a learner's few events: most
writes), arrays or COPY above. :func:`source` gives an INSERT its rows in either form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

SMALL = 32  # rows up to which a batch write is a multi-row VALUES


@lru_cache(maxsize=256)
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


@lru_cache(maxsize=64)
def _arrays_sql(row: str) -> str:
    """``row``'s columns as arrays: ``($::uuid, $::text)`` → ``SELECT * FROM unnest($1::uuid[], $2::text[])``."""
    casts = re.findall(r"\$::(\w+)", row)
    return "SELECT * FROM unnest(" + ", ".join(f"${i}::{t}[]" for i, t in enumerate(casts, 1)) + ")"


def source(row: str, rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """The rows of an ``INSERT``, and their parameters: ``rows`` (each the values of ``row``, a row
    whose every parameter is a typed ``$::type``) as ``VALUES`` up to ``SMALL`` rows, else as a
    SELECT over one array per column. Either way they are inserted in the order given."""
    if len(rows) <= SMALL:
        return "VALUES " + rows_sql(row, len(rows)), [v for r in rows for v in r]
    return _arrays_sql(row), [list(column) for column in zip(*rows, strict=True)]
