"""Which database errors make the event processes hold their work and try again (the database or
a Citus node is away) and which are refusals of the work itself (dead-lettered after retries)."""

from __future__ import annotations

import asyncpg
import pytest

from lmsd.events.connection import database_away

LOST = "connection to the remote node lmsd@127.0.0.1:25027 failed: server closed the connection unexpectedly"


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("connect call failed"),
        asyncpg.exceptions.ConnectionFailureError("connection to the remote node failed: Connection refused"),
        asyncpg.exceptions.InternalServerError(LOST),  # Citus lost a worker mid-statement (XX000)
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.UndefinedTableError('relation "outbox" does not exist'),
    ],
)
def test_away_means_try_again(error: BaseException) -> None:
    assert database_away(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.InternalServerError("could not find a shard placement"),  # XX000, not a lost node
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.CheckViolationError("new row violates check constraint"),
        ValueError("not a database error"),
    ],
)
def test_a_refusal_is_not_away(error: BaseException) -> None:
    assert not database_away(error)
