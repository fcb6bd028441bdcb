"""Errors that say a database node is away rather than refusing the work. Shared by the API
(503 with Retry-After, :mod:`lmsd.server.errors`) and the event processes (hold the work and try
again, :func:`lmsd.events.connection.database_away`); lmsd-projector has the same rule in Rust
(rust/projector/src/consumer.rs ``unavailable``)."""

from __future__ import annotations

# Citus losing a worker in the middle of a command or of its one-phase commit: the coordinator
# reports it under SQLSTATE XX000 (internal error), not class 08. The same work succeeds once the
# worker is back (a commit that may have happened is safe to repeat: writes are idempotent by id).
LOST_NODE = ("server closed the connection unexpectedly", "could not commit transaction for shard")


def lost_node(sqlstate: str, message: str) -> bool:
    """Whether an error with this SQLSTATE and message is a Citus node lost mid-command."""
    return sqlstate == "XX000" and any(m in message for m in LOST_NODE)
