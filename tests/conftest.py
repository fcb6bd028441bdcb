"""Fixtures shared by every suite, and how pytest-xdist shares the work.

Three sizes of test bed, cheapest first:
- ``db``: an AsyncSession on the session-wide ``database`` (one migrated PostgreSQL per worker,
  no stack) inside a transaction rolled back after the test. Service tests with tests/factories.
- ``database``: the same PostgreSQL, committed to; for in-process API and portal tests.
- ``shared_campus`` (one install per module), ``campus`` and ``fresh`` (one per test): the whole
  stack through the real CLI, for the end-to-end journeys only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.db.engine import make_engine
from tests.db import Database, start_database
from tests.support import Campus, new_campus, on_citus


@pytest.fixture
def campus(tmp_path: Path) -> Iterator[Campus]:
    """A campus installed and running for one test; stopped afterwards whatever happens."""
    c = new_campus(tmp_path / "data")
    result = c.install()
    assert result.returncode == 0, result.stdout + result.stderr
    yield c
    c.lmsd("down", timeout=120)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Campus]:
    """A campus not installed yet (the test installs it); stopped afterwards."""
    c = new_campus(tmp_path / "data")
    yield c
    if (c.data_dir / "config.toml").exists():
        c.lmsd("down", timeout=120)


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated PostgreSQL per test worker, with campus A and its admin; with
    LMSD_TEST_CITUS=1, a Citus coordinator and two workers, migrated through Citus."""
    if on_citus():
        from tests.citus.cluster import CitusCluster

        cluster = CitusCluster(tmp_path_factory.mktemp("citus"))
        try:
            cluster.start()
            yield cluster.campus("lmsd")
        finally:
            cluster.stop()
        return
    db = start_database(tmp_path_factory.mktemp("pg") / "data")
    yield db
    db.stop()


def pytest_configure(config: pytest.Config) -> None:
    """LMSD_TEST_CITUS=1 without Citus installed is a mistake, not a reason to skip everything."""
    if on_citus():
        from tests.citus import citus_installed

        if not citus_installed():
            raise pytest.UsageError("LMSD_TEST_CITUS=1 needs Citus in the pgserver PostgreSQL: run scripts/citus")


@pytest.fixture
async def db(database: Database) -> AsyncIterator[AsyncSession]:
    """A session whose every change is rolled back after the test.

    The connection's outer transaction is never committed; the session joins it with a
    savepoint, so a service's own ``commit()`` ends the savepoint only and the test carries on
    in the same outer transaction. A call expected to fail goes in ``async with
    db.begin_nested():`` so that what it wrote (or a failed statement) is undone, and nothing
    before it."""
    engine = make_engine(database.settings, database.secrets, pool_size=1)
    try:
        async with engine.connect() as conn:
            outer = await conn.begin()
            if on_citus():
                # One transaction for the whole test: a read of every campus (a parallel multi-shard
                # query) followed by a write to a reference table (a new campus) is refused by Citus
                # unless the transaction is sequential. The API's requests are their own transactions.
                await conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            session = AsyncSession(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
            try:
                yield session
            finally:
                await session.close()
                await outer.rollback()
    finally:
        await engine.dispose()


def running_campus(
    tmp_path_factory: pytest.TempPathFactory, api_workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Campus]:
    """A campus installed and running until the generator is closed (a fixture's body); ``env``
    (settings as LMSD_* variables) applies to its every command."""
    c = new_campus(tmp_path_factory.mktemp("campus") / "data", api_workers=api_workers)
    c.env.update(env or {})
    result = c.install()
    assert result.returncode == 0, result.stdout + result.stderr
    yield c
    c.lmsd("down", timeout=120)


@pytest.fixture(scope="module")
def shared_campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One running campus for a whole module of read-mostly tests."""
    yield from running_campus(tmp_path_factory)


# -- sharing the work between xdist workers (scripts/test: -n 3 --dist loadscope) -------------
# loadscope keeps a module's tests on one worker (a module-scoped campus, browser or replica is
# made once, not once per worker) and hands out modules in collection order: the order below.

# Modules measured as the longest (seconds of one worker, scripts/test's summary): started first
# so that the two workers finish together rather than one waiting on a late long module.
LONGEST = {  # seconds per module of one worker, from scripts/test's summary (CI, 2 cores)
    "tests.citus.test_backup_upgrade": 250,
    "tests.server.test_schemathesis": 260,
    "tests.events.test_events_faults": 200,
    "tests.ops.test_backup_restore": 160,
    "tests.citus.test_cluster": 150,
    "tests.media.test_video": 150,
    "tests.citus.test_distribute": 120,
    "tests.events.test_stream_relay": 110,
    "tests.runtime.test_stack": 100,
    "tests.ops.test_upgrade": 100,
    "tests.learning.test_xapi_forward": 90,
    "tests.events.test_learning_record": 80,
    "tests.portal.test_portal_admin_browser": 70,
    "tests.ops.test_packaging": 60,
    "tests.ops.test_faults": 60,
    # the same suites on Citus (tests/citus/on_citus)
    "tests.citus.on_citus.test_stream_relay": 150,
    "tests.citus.on_citus.test_events_faults": 140,
    "tests.citus.on_citus.test_learning_record": 60,
    "tests.citus.on_citus.test_portal_learner": 45,
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first, then the other whole-stack (slow) ones, then the rest; a
    module's tests keep their order (one weight per module, a stable sort)."""

    def own_weight(item: pytest.Item) -> tuple[int, int]:
        module = item.module.__name__ if item.module else ""
        if module in LONGEST:
            return (0, -LONGEST[module])
        if item.get_closest_marker("slow"):
            return (1, 0)
        return (2, 0)

    by_module: dict[str, tuple[int, int]] = {}
    for item in items:
        module = item.module.__name__ if item.module else ""
        by_module[module] = min(by_module.get(module, (9, 0)), own_weight(item))
    items.sort(key=lambda item: by_module[item.module.__name__ if item.module else ""])
