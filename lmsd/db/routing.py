"""Read replicas behind one session: writes go to the primary, reads to a replica fresh enough.

A :class:`Database` holds the primary engine and one engine per replica. Each unit of work gets a
:class:`RoutingSession`, and SQLAlchemy asks its sync half for a bind per statement
(``Session.get_bind``), so services stay unaware of replicas:

* a flush, an INSERT/UPDATE/DELETE, ``SELECT ... FOR UPDATE`` (``with_for_update``), raw SQL
  or a bare ``session.connection()`` goes to the primary and *pins* the session there: every
  later statement of the session, reads included, sees its own writes;
* a plain SELECT before that goes to the replica chosen when the session was opened, if any.

The replica is chosen once per session, before the first statement (choosing needs I/O, which
``get_bind`` cannot do): one that is not marked down, has replayed at least the client's LSN token
(``min_lsn``) and is provably no more than ``max_lag_ms`` behind (lag at the last check plus the
time since). Otherwise the reads go to the primary. Replica state is re-read at most once per
``check_interval_s``, or at once when a token is ahead of what we last saw.

Read-your-writes across requests: after a commit that wrote, the session reads the primary's
``pg_current_wal_lsn()`` into :attr:`RoutingSession.lsn`. The client hands it back (the HTTP
layer uses a header and a cookie, see :mod:`lmsd.server.consistency`) and only a replica that
has replayed that far serves its reads.

A replica that refuses a connection is marked down for ``down_backoff_s`` and that session's
reads go to the primary on the spot.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from lmsd.credentials import Secrets
from lmsd.db.dsn import connect_args, engine_url, replica_count
from lmsd.db.engine import make_engine
from lmsd.settings import Settings

_CONNECT_ERRORS = (DBAPIError, OSError, TimeoutError)

# A replica's state in one row; shared with `lmsd status` (lmsd.runtime.replica), which must
# agree on what "lagging" means. Lag in ms is how old the newest replayed commit is, but only
# while received WAL waits to be replayed: a caught-up replica of an idle primary has lag 0, not
# "time since the last write". NULL when unknown (nothing received yet): "not usable".
STATE_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replay_lsn,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE (EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8
       END AS lag_ms
"""


def parse_lsn(value: str) -> int | None:
    """``'16/B374D848'`` -> a byte position; None for anything else (a bad token is ignored)."""
    high, sep, low = value.strip().partition("/")
    if not sep or not 1 <= len(high) <= 8 or not 1 <= len(low) <= 8:
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(eq=False)
class Replica:
    """One replica's engine and what we last learnt about it."""

    name: str
    engine: AsyncEngine
    replay_lsn: int | None = None
    lag_ms: float | None = None
    checked_at: float = float("-inf")  # monotonic
    down_until: float = 0.0
    last_error: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def mark_down(self, why: str, backoff_s: float) -> None:
        self.down_until = time.monotonic() + backoff_s
        self.checked_at = float("-inf")  # look again once the back-off is over
        self.last_error = why

    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    def lag_bound_ms(self) -> float:
        """How far behind it can be now: its lag when checked plus the time since."""
        if self.lag_ms is None:
            return float("inf")
        return self.lag_ms + (time.monotonic() - self.checked_at) * 1000


class Database:
    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[Replica] = (),
        *,
        max_lag_ms: float = 5000,
        check_interval_s: float = 1.0,
        down_backoff_s: float = 5.0,
        check_timeout_s: float = 2.0,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.max_lag_ms = max_lag_ms
        self.check_interval_s = check_interval_s
        self.down_backoff_s = down_backoff_s
        self.check_timeout_s = check_timeout_s
        self._turn = itertools.count()
        for replica in self.replicas:
            self._watch_errors(replica)

    @classmethod
    def from_settings(cls, settings: Settings, secrets: Secrets, pool_size: int = 10) -> Database:
        pg = settings.postgres
        replicas = [
            Replica(
                name=f"postgres-replica-{n}",
                engine=create_async_engine(
                    engine_url(settings, secrets, node=n),
                    pool_size=pool_size,
                    max_overflow=pool_size,
                    pool_pre_ping=True,
                    connect_args=connect_args(settings, timeout=3),  # a dead replica must not stall a request long
                ),
            )
            for n in range(1, replica_count(settings) + 1)
        ]
        return cls(make_engine(settings, secrets, pool_size), replicas, max_lag_ms=pg.max_replica_lag_ms)

    def _watch_errors(self, replica: Replica) -> None:
        """A lost connection in the middle of a read fails that statement; the back-off spares
        the requests after it."""

        def on_error(context: Any) -> None:
            if context.is_disconnect:
                replica.mark_down(str(context.original_exception), self.down_backoff_s)

        event.listen(replica.engine.sync_engine, "handle_error", on_error)

    async def session(self, min_lsn: int | None = None) -> RoutingSession:
        """A unit of work whose reads may go to a replica that has replayed ``min_lsn``."""
        return RoutingSession(self, await self.choose_replica(min_lsn))

    async def choose_replica(self, min_lsn: int | None = None) -> Replica | None:
        if not self.replicas:
            return None
        start = next(self._turn) % len(self.replicas)
        for replica in self.replicas[start:] + self.replicas[:start]:
            if replica.is_down():
                continue
            behind = min_lsn is not None and (replica.replay_lsn or 0) < min_lsn
            stale = time.monotonic() - replica.checked_at > self.check_interval_s
            if behind or stale or replica.lag_bound_ms() > self.max_lag_ms:
                await self.refresh(replica)
            if self._usable(replica, min_lsn):
                return replica
        return None

    def _usable(self, replica: Replica, min_lsn: int | None) -> bool:
        if replica.is_down() or replica.replay_lsn is None:
            return False
        if min_lsn is not None and replica.replay_lsn < min_lsn:
            return False
        return replica.lag_bound_ms() <= self.max_lag_ms

    async def refresh(self, replica: Replica) -> None:
        """Read the replica's replay position and lag (one query; shared by concurrent callers)."""
        seen = replica.checked_at
        async with replica.lock:
            if replica.checked_at != seen:
                return  # another request refreshed it while we waited
            try:
                async with asyncio.timeout(self.check_timeout_s), replica.engine.connect() as conn:
                    row = (await conn.execute(text(STATE_SQL))).one()
            except _CONNECT_ERRORS as exc:
                replica.mark_down(str(exc) or type(exc).__name__, self.down_backoff_s)
                return
            if not row.in_recovery:  # promoted: it no longer follows our primary
                replica.mark_down("not a standby", self.down_backoff_s)
                return
            replica.replay_lsn = row.replay_lsn
            replica.lag_ms = row.lag_ms
            replica.checked_at = time.monotonic()
            replica.last_error = ""

    async def primary_lsn(self) -> int:
        async with self.primary.connect() as conn:
            value = await conn.scalar(text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"))
        return int(value)

    async def dispose(self) -> None:
        await self.primary.dispose()
        for replica in self.replicas:
            await replica.engine.dispose()


def _plain_read(clause: Any) -> bool:
    """A SELECT that neither locks rows nor is raw SQL: safe on a replica."""
    return bool(getattr(clause, "is_select", False)) and getattr(clause, "_for_update_arg", None) is None


class RoutedSyncSession(Session):
    """The sync half of :class:`RoutingSession`: SQLAlchemy asks it for a bind per statement."""

    replica: Replica | None = None
    down_backoff_s: float = 5.0
    pinned = False  # wrote or locked: the primary for the rest of this session
    wrote = False  # since the last commit, so that commit's LSN is worth reading

    def get_bind(
        self, mapper: Any = None, *, clause: Any = None, bind: Any = None, **kw: Any
    ) -> Engine | Connection:
        if bind is not None:
            return bind  # type: ignore[no-any-return]
        if not self._flushing and _plain_read(clause):
            if self.replica is not None and not self.pinned:
                return self.replica.engine.sync_engine
        else:
            self.pinned = self.wrote = True
        return super().get_bind(mapper, clause=clause, **kw)

    def _connection_for_bind(self, engine: Any, execution_options: Any = None, **kw: Any) -> Connection:
        # The only place a refused replica connection can be caught before the statement fails:
        # get_bind picked the engine, this checks a connection out of its pool. SQLAlchemy
        # private API; test_replica's fallback test keeps us honest across upgrades.
        try:
            return super()._connection_for_bind(engine, execution_options, **kw)
        except _CONNECT_ERRORS as exc:
            replica = self.replica
            if replica is None or engine is not replica.engine.sync_engine:
                raise
            replica.mark_down(str(exc) or type(exc).__name__, self.down_backoff_s)
            self.replica = None
            assert self.bind is not None
            return super()._connection_for_bind(self.bind, execution_options, **kw)


class RoutingSession(AsyncSession):
    """The API's unit of work. ``lsn`` is the primary's WAL position after the last commit
    that wrote (None if nothing was written): the client's token for its next reads."""

    sync_session_class = RoutedSyncSession

    def __init__(self, database: Database, replica: Replica | None) -> None:
        super().__init__(bind=database.primary, expire_on_commit=False)
        self.database = database
        self.lsn: int | None = None
        self.routed.replica = replica
        self.routed.down_backoff_s = database.down_backoff_s

    @property
    def routed(self) -> RoutedSyncSession:
        assert isinstance(self.sync_session, RoutedSyncSession)
        return self.sync_session

    @property
    def replica(self) -> Replica | None:
        """The replica serving this session's reads (None: the primary serves them)."""
        return None if self.routed.pinned else self.routed.replica

    async def commit(self) -> None:
        await super().commit()  # flushes first: `wrote` may become true only in there
        if self.routed.wrote:
            self.routed.wrote = False
            self.lsn = await self.database.primary_lsn()

    async def rollback(self) -> None:
        await super().rollback()
        self.routed.wrote = False
