"""The schema on a real Citus cluster (coordinator + 2 workers): every migration distributes its
tables per the plan, and a campus migrated without Citus moves onto the cluster with its data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import ForeignKeyConstraint, text

from lmsd.courses import service as courses
from lmsd.db.citus import distribute_existing, distribute_tables
from lmsd.db.engine import make_engine, make_sessionmaker
from lmsd.db.models import CITUS_DISTRIBUTED, CITUS_REFERENCE, Base
from lmsd.enrolments import service as enrolments
from tests import factories
from tests.citus import requires_citus
from tests.citus.cluster import CitusCluster
from tests.db import Database

pytestmark = requires_citus

# (table, referred table, columns) of every foreign key the models declare
PLANNED_KEYS = {
    (t.name, c.referred_table.name, tuple(col.name for col in c.columns))
    for t in Base.metadata.tables.values()
    for c in t.constraints
    if isinstance(c, ForeignKeyConstraint)
}


async def _placement(cluster: CitusCluster, database: str) -> dict[str, tuple[str, str, int]]:
    rows = await cluster.fetch(
        "SELECT table_name::text, citus_table_type, distribution_column, colocation_id FROM citus_tables",
        database=database,
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def _foreign_keys(cluster: CitusCluster, database: str) -> set[tuple[str, str, tuple[str, ...]]]:
    rows = await cluster.fetch(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, "
        "array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(n, o) "
        "      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
        database=database,
    )
    return {(r[0], r[1], tuple(r[2])) for r in rows}


def _assert_as_planned(placed: dict[str, tuple[str, str, int]]) -> None:
    assert {t for t, p in placed.items() if p[0] == "reference"} == set(CITUS_REFERENCE)
    distributed = {t: p for t, p in placed.items() if p[0] == "distributed"}
    assert set(distributed) == set(CITUS_DISTRIBUTED), set(distributed) ^ set(CITUS_DISTRIBUTED)
    assert {p[1] for p in distributed.values()} == {"campus_id"}
    assert len({p[2] for p in distributed.values()}) == 1, "all campus tables in one colocation group"


async def test_every_migration_runs_on_citus_and_distributes_per_the_plan(
    citus_cluster: CitusCluster, citus_database: Database
) -> None:
    name = citus_database.settings.postgres.database
    _assert_as_planned(await _placement(citus_cluster, name))
    # the foreign keys dropped around create_distributed_table are all back
    assert await _foreign_keys(citus_cluster, name) == PLANNED_KEYS
    nodes = await citus_cluster.fetch(
        "SELECT DISTINCT nodeport FROM citus_shards WHERE citus_table_type = 'distributed'", database=name
    )
    assert {r[0] for r in nodes} == set(citus_cluster.worker_ports), "shards on both workers"
    # Citus refuses the outbox's trigger; it is gone, everything else of the schema is there
    triggers = await citus_cluster.fetch(
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'outbox'::regclass", database=name
    )
    assert triggers == []


@pytest.fixture(scope="module")
def existing(citus_cluster: CitusCluster) -> Iterator[Database]:
    """A campus migrated while its coordinator database had no citus extension."""
    yield citus_cluster.campus("existing", citus=False)


async def _counts(db: Database) -> dict[str, int]:
    engine = make_engine(db.settings, db.secrets, pool_size=1)
    try:
        async with engine.connect() as conn:
            return {
                t: int((await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one())
                for t in (*CITUS_REFERENCE, *CITUS_DISTRIBUTED)
            }
    finally:
        await engine.dispose()


async def test_an_existing_campus_moves_to_citus_with_its_data(citus_cluster: CitusCluster, existing: Database) -> None:
    engine = make_engine(existing.settings, existing.secrets, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            admin = await factories.campus(session)  # campus B, next to the install's campus A
            teacher = await factories.user(session, admin, "instructor")
            learner = await factories.user(session, admin)
            tree = await factories.course(session, teacher, lessons=3)
            await factories.quiz(session, teacher, tree)
            await factories.enrolment(session, learner, tree)
        before = await _counts(existing)
        assert before["courses"] == 1 and before["lessons"] == 4 and before["outbox"] > 0

        # without the extension there is nothing to distribute to: a clear refusal, no change
        async with engine.begin() as conn:
            with pytest.raises(RuntimeError, match="citus extension is not installed"):
                await conn.run_sync(distribute_existing)

        name = existing.settings.postgres.database
        await citus_cluster.enable_citus(name)
        async with engine.begin() as conn:
            moved = await conn.run_sync(distribute_existing)
        assert moved[: len(CITUS_REFERENCE)] == list(CITUS_REFERENCE)
        assert set(moved) == set(CITUS_REFERENCE) | set(CITUS_DISTRIBUTED)
        _assert_as_planned(await _placement(citus_cluster, name))
        assert await _foreign_keys(citus_cluster, name) == PLANNED_KEYS
        assert await _counts(existing) == before
        async with engine.begin() as conn:
            assert await conn.run_sync(distribute_existing) == [], "idempotent"

        # the services read and write the moved data through the coordinator
        async with make_sessionmaker(engine)() as session, session.begin():
            mine, _ = await courses.my_courses(session, learner)
            assert [c.id for c in mine] == [tree.id]
            other = await factories.user(session, admin)
            made = await enrolments.enrol_self(session, other, tree.id)
            assert isinstance(made.id, uuid.UUID)
    finally:
        await engine.dispose()


async def test_a_table_outside_the_plan_is_refused_before_anything_changes(citus_database: Database) -> None:
    engine = make_engine(citus_database.settings, citus_database.secrets, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE not_planned (campus_id uuid PRIMARY KEY)"))
            with pytest.raises(ValueError, match="not in the Citus plan.*not_planned"):
                await conn.run_sync(distribute_tables, ["courses", "not_planned"])
            kind = await conn.scalar(text("SELECT citus_table_type FROM citus_tables WHERE table_name = 'not_planned'::regclass"))
            assert kind is None
            await conn.rollback()
    finally:
        await engine.dispose()
