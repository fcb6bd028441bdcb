"""What a hot path sends to a Citus coordinator, and where Citus sends it.

:func:`traced` gives a session on the coordinator (inside a transaction rolled back at the end,
like the ``db`` fixture) whose statements are recorded while ``trace.on``: SQLAlchemy's through
``before_cursor_execute``, the raw driver's (services that use asyncpg directly, the outbox)
through asyncpg's query logger, and the commands Citus issues to the workers for them
(``citus.log_remote_commands``: this also covers ``COPY``, which neither of the others sees).

:meth:`Trace.explain` EXPLAINs each recorded statement with its parameters, and
:meth:`Trace.shard_groups` names the shard groups (by hash range) of the distributed shards the
workers were sent: one campus's data is one shard group.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lmsd.db.engine import make_engine
from tests.db import Database

DML = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_SHARD = re.compile(r"\bpublic\.([a-z_]+)_(\d+)\b")
_TASKS = re.compile(r"Task Count: (\d+)")


@dataclass
class Trace:
    conn: AsyncConnection
    driver: Any  # the asyncpg connection under the session
    on: bool = False
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop recording, after asyncpg's loggers have run (it calls them soon, not at once)."""
        for _ in range(3):
            await asyncio.sleep(0)
        self.on = False

    def record(self, sql: str, args: Any) -> None:
        if self.on and sql.lstrip().upper().startswith(DML):
            self.statements.append((sql, tuple(args or ())))

    async def explain(self) -> list[tuple[str, str]]:
        """(statement, its EXPLAIN) for every statement recorded, in order."""
        was, self.on = self.on, False
        try:
            out = []
            for sql, args in self.statements:
                rows = await self.driver.fetch("EXPLAIN " + sql, *args)
                out.append((sql, "\n".join(r[0] for r in rows)))
            return out
        finally:
            self.on = was

    async def shard_groups(self) -> set[str]:
        """The hash ranges (shardminvalue) of the distributed shards the workers were sent."""
        ids = sorted({int(m.group(2)) for line in self.remote for m in _SHARD.finditer(line)})
        if not ids:
            return set()
        rows = await self.driver.fetch(
            "SELECT s.shardminvalue FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid) "
            "WHERE s.shardid = ANY($1::bigint[]) AND p.partmethod = 'h'",
            ids,
        )
        return {str(r[0]) for r in rows}

    async def campus_group(self, campus_id: uuid.UUID) -> str:
        """The hash range of the campus's shard group."""
        value = await self.driver.fetchval(
            "SELECT s.shardminvalue FROM pg_dist_shard s "
            "WHERE s.shardid = get_shard_id_for_distribution_column('users', $1::uuid)",
            campus_id,
        )
        return str(value)


def router_problems(explained: list[tuple[str, str]]) -> list[str]:
    """Statements whose plan is not one task on one shard (or a reference table), nor an
    INSERT ... SELECT of the statement's own parameters (whose rows Citus routes one by one:
    the shard groups of :meth:`Trace.shard_groups` show where they went)."""
    problems = []
    for sql, plan in explained:
        tasks = [int(n) for n in _TASKS.findall(plan)]
        if "INSERT/SELECT method: pull to coordinator" in plan:
            if "Custom Scan (Citus Adaptive)" in plan:  # the SELECT itself reads distributed tables
                problems.append(f"INSERT ... SELECT reads shards: {sql}\n{plan}")
        elif any(n != 1 for n in tasks):
            problems.append(f"{tasks} tasks: {sql}\n{plan}")
        elif "Custom Scan (Citus" in plan and not tasks:
            problems.append(f"not a router plan: {sql}\n{plan}")
    return problems


@asynccontextmanager
async def traced(database: Database) -> AsyncIterator[tuple[AsyncSession, Trace]]:
    """A session on the coordinator, rolled back at the end, and its trace (off until turned on)."""
    engine = make_engine(database.settings, database.secrets, pool_size=1)
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            trace = Trace(conn, driver)

            def before(_c: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
                trace.record(sql, params)

            def logged(query: asyncpg.connection.LoggedQuery) -> None:
                trace.record(query.query, query.args)

            def notice(_c: Any, message: Any) -> None:
                if trace.on and str(message.message).startswith("issuing"):
                    trace.remote.append(str(message.message))

            event.listen(conn.sync_connection, "before_cursor_execute", before)
            driver.add_query_logger(logged)
            driver.add_log_listener(notice)
            await conn.exec_driver_sql("SET LOCAL citus.log_remote_commands TO on")
            session = AsyncSession(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
            try:
                yield session, trace
            finally:
                driver.remove_query_logger(logged)
                driver.remove_log_listener(notice)
                await session.close()
                await outer.rollback()
    finally:
        await engine.dispose()
