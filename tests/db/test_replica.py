"""Read replicas on real processes: a primary plus a streaming replica made with pg_basebackup.

Proves the routing (reads on the replica, writes and everything after them on the primary), the
read-your-writes token while the replica is held back (``pg_wal_replay_pause``), the fallback to
the primary when the replica lags or is stopped, recovery when it returns, the HTTP round trip
of the token, and the replica's row in `lmsd status`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from lmsd.app import create_app
from lmsd.db.models import Campus as CampusRow
from lmsd.db.routing import STATE_SQL, Database, RoutingSession, format_lsn, parse_lsn
from lmsd.runtime import postgres, replica
from tests.api import admin
from tests.db import Database as Primary
from tests.db import start_database, start_replica, stop_replica
from tests.support import ADMIN_PASSWORD, Campus, free_port_block


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Primary]:
    db = start_database(tmp_path_factory.mktemp("pg-replica") / "data", replicas=1)
    start_replica(db)
    yield db
    stop_replica(db)
    db.stop()


def replica_port(db: Primary) -> int:
    return replica.replica_port(db.settings, 1)


async def replica_sql(db: Primary, sql: str) -> object:
    """As the superuser on the replica (pausing replay needs it)."""
    conn = await asyncpg.connect(postgres.superuser_dsn(db.settings, db.secrets, port=replica_port(db)))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def lag_ms(db: Primary) -> float:
    conn = await asyncpg.connect(postgres.superuser_dsn(db.settings, db.secrets, port=replica_port(db)))
    try:
        row = await conn.fetchrow(STATE_SQL)
    finally:
        await conn.close()
    assert row is not None and row["in_recovery"]
    print(f"replica lag: {row['lag_ms']:.1f} ms")  # shown with -s: the numbers in the report
    return float(row["lag_ms"])


@asynccontextmanager
async def paused(db: Primary) -> AsyncIterator[None]:
    """The replica receives WAL but replays none: an artificially lagging replica."""
    await replica_sql(db, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        await replica_sql(db, "SELECT pg_wal_replay_resume()")


async def caught_up(database: Database, lsn: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await database.choose_replica(lsn) is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the replica did not catch up")


@asynccontextmanager
async def routed(db: Primary, **options: float) -> AsyncIterator[Database]:
    database = Database.from_settings(db.settings, db.secrets, pool_size=2)
    for name, value in options.items():
        setattr(database, name, value)
    try:
        yield database
    finally:
        await database.dispose()


async def server_port(session: RoutingSession) -> int:
    """Which server answered: a plain SELECT, routed like any read."""
    return int(await session.scalar(select(func.inet_server_port())))


async def rename(database: Database, campus_id: uuid.UUID, name: str) -> int:
    async with await database.session() as s:
        row = await s.get(CampusRow, campus_id)
        assert row is not None
        row.name = name
        await s.commit()
    assert s.lsn is not None
    return s.lsn


async def test_reads_go_to_the_replica_and_writes_pin_the_primary(cluster: Primary) -> None:
    campus_id = uuid.UUID(cluster.settings.campus.id)
    async with routed(cluster) as database:
        async with await database.session() as s:
            assert await server_port(s) == replica_port(cluster)
            assert await s.scalar(select(func.pg_is_in_recovery())) is True
            row = await s.get(CampusRow, campus_id)  # an ORM read: the replica too
            assert row is not None and s.replica is not None
            # A write (flush) goes to the primary, and so does every read after it.
            row.name = "Campus A (renamed)"
            await s.flush()
            assert s.replica is None
            assert await server_port(s) == cluster.settings.postgres.port
            fresh = await s.scalar(select(CampusRow.name).where(CampusRow.id == campus_id))
            assert fresh == "Campus A (renamed)"  # read-after-write in the same unit of work
            await s.commit()
            assert s.lsn is not None and parse_lsn(format_lsn(s.lsn)) == s.lsn
            # Still the primary after the commit: the session stays pinned.
            assert await server_port(s) == cluster.settings.postgres.port
        # A row lock is a write intent: SELECT ... FOR UPDATE goes to the primary.
        async with await database.session() as s:
            await s.get(CampusRow, campus_id, with_for_update=True)
            assert await server_port(s) == cluster.settings.postgres.port
            await s.commit()
            assert s.lsn is not None  # a lock may precede a write: the token is given anyway
        async with await database.session() as s:
            await s.scalar(select(CampusRow).where(CampusRow.id == campus_id).with_for_update())
            assert s.replica is None
        # Reads alone give no token.
        async with await database.session() as s:
            await s.get(CampusRow, campus_id)
            await s.commit()
            assert s.lsn is None and s.replica is not None


async def test_read_your_writes_across_sessions_while_the_replica_lags(cluster: Primary) -> None:
    campus_id = uuid.UUID(cluster.settings.campus.id)
    async with routed(cluster, max_lag_ms=600_000) as database:  # only the token decides here
        before = await rename(database, campus_id, "Before")
        await caught_up(database, before)
        async with paused(cluster):
            token = await rename(database, campus_id, "After")
            await asyncio.sleep(0.3)
            assert await lag_ms(cluster) >= 250  # the replica really is behind
            # Without the token: the replica, which does not have the write yet.
            async with await database.session() as s:
                assert await server_port(s) == replica_port(cluster)
                assert await s.scalar(select(CampusRow.name).where(CampusRow.id == campus_id)) == "Before"
            # With it: the primary, so the writer never reads older data.
            async with await database.session(min_lsn=token) as s:
                assert s.replica is None
                assert await s.scalar(select(CampusRow.name).where(CampusRow.id == campus_id)) == "After"
        # Once the replica has replayed the token, it serves that client again.
        await caught_up(database, token)
        async with await database.session(min_lsn=token) as s:
            assert await server_port(s) == replica_port(cluster)
            assert await s.scalar(select(CampusRow.name).where(CampusRow.id == campus_id)) == "After"
        assert await lag_ms(cluster) < 1000


async def test_a_replica_past_max_lag_serves_no_reads(cluster: Primary) -> None:
    campus_id = uuid.UUID(cluster.settings.campus.id)
    async with routed(cluster, max_lag_ms=200, check_interval_s=0.05) as database:
        await caught_up(database, await rename(database, campus_id, "Steady"))
        assert await database.choose_replica() is not None
        async with paused(cluster):
            await rename(database, campus_id, "Moving")
            await asyncio.sleep(0.5)
            assert await lag_ms(cluster) > 200
            async with await database.session() as s:  # no token at all: lag alone decides
                assert s.replica is None
                assert await server_port(s) == cluster.settings.postgres.port
        await asyncio.sleep(0.2)
        async with await database.session() as s:
            assert await server_port(s) == replica_port(cluster)


async def test_fallback_to_the_primary_when_the_replica_is_down_and_back(cluster: Primary) -> None:
    # A long check interval: the session still believes the replica is up when it is gone, so
    # the fallback happens where the connection is refused, not in the periodic check.
    async with routed(cluster, check_interval_s=3600, down_backoff_s=0.5) as database:
        async with await database.session() as s:
            assert await server_port(s) == replica_port(cluster)
        await asyncio.to_thread(stop_replica, cluster)
        try:
            async with await database.session() as s:
                assert s.replica is not None  # chosen from the cached state...
                assert await server_port(s) == cluster.settings.postgres.port  # ...and fell back
                assert s.replica is None
            assert database.replicas[0].is_down()
            async with await database.session() as s:  # marked down: not even tried
                assert s.replica is None
                assert await server_port(s) == cluster.settings.postgres.port
        finally:
            await asyncio.to_thread(start_replica, cluster)
        await asyncio.sleep(0.6)  # the back-off is over: checked again, and used
        async with await database.session() as s:
            assert await server_port(s) == replica_port(cluster)


@asynccontextmanager
async def api(db: Primary, **postgres_settings: object) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    settings = db.settings.model_copy(
        update={"postgres": db.settings.postgres.model_copy(update=postgres_settings)}
    )
    async with AsyncTestClient(app=create_app(settings, db.secrets), base_url="http://a.example") as c:
        yield c


async def test_the_lsn_token_round_trips_over_http(cluster: Primary) -> None:
    async with api(cluster, max_replica_lag_ms=600_000) as c:
        adm = await admin(c, cluster)
        first = await c.post("/api/v1/courses", headers=adm.h, json={"code": f"R{uuid.uuid4().hex[:8]}", "title": "Warm-up"})
        assert first.status_code == 201, first.text
        async with routed(cluster) as database:  # the app's own runs on the client's loop
            await caught_up(database, parse_lsn(first.headers["x-lmsd-lsn"]) or 0)
        async with paused(cluster):
            r = await c.post("/api/v1/courses", headers=adm.h, json={"code": f"R{uuid.uuid4().hex[:8]}", "title": "Replicas 101"})
            assert r.status_code == 201, r.text
            token = r.headers["x-lmsd-lsn"]
            assert parse_lsn(token) is not None
            assert f"lmsd_lsn={token}" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
            url = f"/api/v1/courses/{r.json()['id']}"
            # The browser way: the cookie alone brings the client to data as new as its write.
            assert (await c.get(url, headers=adm.h)).status_code == 200
            c.cookies.clear()
            # Another client, with no token, reads the lagging replica: the course is not there yet.
            assert (await c.get(url, headers=adm.h)).status_code == 404
            # The API-client way: the header.
            seen = await c.get(url, headers={**adm.h, "x-lmsd-min-lsn": token})
            assert seen.status_code == 200 and seen.json()["course"]["title"] == "Replicas 101"
            assert "x-lmsd-lsn" not in seen.headers  # a read gives no new token
            # A malformed token is ignored, not an error.
            assert (await c.get(url, headers={**adm.h, "x-lmsd-min-lsn": "nonsense"})).status_code == 404


# -- the embedded stack ---------------------------------------------------------------------


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[Campus]:
    """A campus with one replica, not installed yet (the test installs it); stopped afterwards.
    Replica 1 takes postgres.port + 1, so PostgreSQL goes last in the port block."""
    base = free_port_block(7)
    ports = {"http": base, "api": base + 1, "nats": base + 3, "nats_monitor": base + 4, "postgres": base + 5}
    c = Campus(tmp_path / "data", ports, env={"LMSD_POSTGRES__REPLICAS": "1"})
    yield c
    if (c.data_dir / "config.toml").exists():
        c.lmsd("down", timeout=120)


@pytest.mark.slow
def test_status_shows_the_replica_and_its_lag(replicated: Campus) -> None:
    result = replicated.install()
    assert result.returncode == 0, result.stdout + result.stderr
    status = replicated.lmsd("status", "--json")
    report = json.loads(status.stdout)
    assert status.returncode == 0 and report["healthy"], report
    rows = {row["name"]: row for row in report["components"]}
    assert list(rows) == ["postgres", "postgres-replica-1", "nats", "api-0", "relay", "projector-0", "media-worker", "transcoder-0", "gateway"]
    row = rows["postgres-replica-1"]
    assert row["ok"] and row["pid"] and row["version"].startswith("16") and not row["required"], row
    assert isinstance(row["lag_ms"], float) and row["lag_ms"] >= 0
    assert "streaming" in row["detail"] and "lag" in row["detail"]
    print(f"status: replica lag {row['lag_ms']} ms")
    assert "lag_ms" not in rows["postgres"]  # the primary's row keeps its shape
    # Through the gateway: a write hands back a token.
    login = httpx.post(
        f"{replicated.url}/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200, login.text
    assert parse_lsn(login.headers.get("x-lmsd-lsn", "")) is not None
    text = replicated.lmsd("status").stdout
    assert "PostgreSQL replica 1" in text and "lag" in text
