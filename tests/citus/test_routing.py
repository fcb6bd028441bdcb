"""Every hot path is a single-shard query for one campus on Citus (issue 15).

Each test drives the service's own function on a session bound to the coordinator of a real
cluster (coordinator + 2 workers), records the statements it sends (tests/citus/trace.py),
EXPLAINs each with its parameters and asserts that Citus plans it on one shard ("Task Count: 1",
a reference table included), and that the commands Citus sent the workers touched the campus's
shard group only (that also covers COPY and INSERT ... SELECT of the statement's parameters,
whose rows Citus routes one by one).

The statements that read every shard on purpose are in ``DELIBERATE`` with the reason (and in
docs/citus.md, with the maintenance and platform-wide queries that no hot path runs).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.campuses import service as campuses
from lmsd.courses import service as courses
from lmsd.db.engine import make_engine, make_sessionmaker
from lmsd.db.models import User
from lmsd.enrolments import service as enrolments
from lmsd.events import relay
from lmsd.identity import service as identity
from lmsd.learning import service as learning
from lmsd.learning.schemas import ActivityBatch, ActivityIn
from lmsd.policy import Identity
from lmsd.quizzes import service as quizzes
from tests import factories
from tests.citus import requires_citus
from tests.citus.cluster import HOST, SUPERUSER, CitusCluster
from tests.citus.trace import Trace, router_problems, traced
from tests.db import Database

pytestmark = requires_citus

# Statements that read every shard on purpose (matched by their start), with the reason.
DELIBERATE = {
    relay._PENDING.strip()[:60]: "the relay serves every campus: its work list starts from the pending "
    "aggregates of all of them (a small partial index per shard, merged by published_seq); each "
    "campus's events are then read from its own shard",
}
STORE_RS = Path(__file__).resolve().parents[2] / "rust" / "projector" / "src" / "store" / "sql.rs"


@dataclass
class World:
    campus_id: uuid.UUID
    admin: Identity
    teacher: Identity
    learner: Identity
    tree: factories.CourseTree
    quiz: factories.QuizMade
    enrolment_id: uuid.UUID


@pytest.fixture(scope="module")
def world(citus_database: Database) -> Iterator[World]:
    """Campus B on the cluster with a course, a quiz and an enrolled learner (committed)."""

    async def make() -> World:
        engine = make_engine(citus_database.settings, citus_database.secrets, pool_size=1)
        sessions = make_sessionmaker(engine)
        try:
            # The platform admin is found by a query over every shard; on Citus a transaction that
            # has read shards in parallel cannot then write a reference table (campuses), so the
            # campus is made in a transaction of its own, as the API does it.
            async with sessions() as session, session.begin():
                root = await factories.platform_admin(session)
            tag = uuid.uuid4().hex[:8]
            async with sessions() as session, session.begin():
                made = await campuses.create_campus(
                    session, root, f"Campus {tag}", f"{tag}.example", f"admin@{tag}.example", factories.PASSWORD
                )
            async with sessions() as session, session.begin():
                user = await session.scalar(select(User).where(User.campus_id == made.id, User.role == "admin"))
                assert user is not None
                admin = identity.identity_of(user)
                teacher = await factories.user(session, admin, "instructor")
                learner = await factories.user(session, admin)
                tree = await factories.course(session, teacher, lessons=2)
                quiz = await factories.quiz(session, teacher, tree)
                enrolment = await factories.enrolment(session, learner, tree)
                return World(admin.campus_id, admin, teacher, learner, tree, quiz, enrolment.id)
        finally:
            await engine.dispose()

    yield asyncio.run(make())


async def _assert_one_shard(trace: Trace, campus_id: uuid.UUID, deliberate: tuple[str, ...] = ()) -> None:
    assert trace.statements, "the hot path sent nothing"
    explained = await trace.explain()
    problems = [p for p in router_problems(explained) if not any(d in p for d in deliberate)]
    assert not problems, "\n\n".join(problems)
    groups = await trace.shard_groups()
    if not deliberate:
        assert groups <= {await trace.campus_group(campus_id)}, (groups, trace.remote)


async def _run(database: Database, world: World, path: Callable[[AsyncSession, Trace], Awaitable[Any]]) -> Trace:
    async with traced(database) as (session, trace):
        trace.on = True
        await path(session, trace)
        await trace.stop()
        await _assert_one_shard(trace, world.campus_id)
        return trace


async def test_catalog_outline_and_my_courses(citus_database: Database, world: World) -> None:
    async def path(session: AsyncSession, _: Trace) -> None:
        page = await courses.catalog(session, world.learner)
        assert world.tree.id in [c.id for c in page.items]
        course, _teachers, modules, lessons = await courses.outline(session, world.learner, world.tree.id)
        assert course.id == world.tree.id and modules and lessons
        mine, _teaching = await courses.my_courses(session, world.learner)
        assert [c.id for c in mine] == [world.tree.id]

    await _run(citus_database, world, path)


async def test_enrol(citus_database: Database, world: World) -> None:
    async with traced(citus_database) as (session, trace):
        newcomer = await factories.user(session, world.admin)
        trace.on = True
        made = await enrolments.enrol_self(session, newcomer, world.tree.id)
        await trace.stop()
        assert made.user_id == newcomer.user_id
        await _assert_one_shard(trace, world.campus_id)
        assert any("INSERT INTO public.outbox_" in line for line in trace.remote), "the enrolment's event went to the outbox"


async def test_quiz_attempt_and_gradebook(citus_database: Database, world: World) -> None:
    async def path(session: AsyncSession, _: Trace) -> None:
        attempt, results = await quizzes.submit_attempt(
            session, world.learner, world.quiz.id, world.quiz.answers(factories.RIGHT)
        )
        assert attempt.score == len(results)
        quizzes_, _max, rows = await quizzes.gradebook(session, world.teacher, world.tree.id)
        assert [q.id for q in quizzes_] == [world.quiz.id] and rows

    await _run(citus_database, world, path)


async def test_learning_event_batch_and_outbox_append(citus_database: Database, world: World) -> None:
    lesson = world.tree.lessons[0]
    batch = ActivityBatch(
        events=[
            ActivityIn(world.enrolment_id, "lesson_started", lesson.id, id=uuid.uuid4()),
            ActivityIn(world.enrolment_id, "lesson_completed", lesson.id),
        ]
    )

    async def path(session: AsyncSession, _: Trace) -> None:
        accepted = await learning.record_activity(session, world.learner, batch, max_batch=100)
        assert accepted.accepted == 2

    trace = await _run(citus_database, world, path)
    assert any("INSERT INTO public.outbox_" in line for line in trace.remote)


async def test_small_writes_commit_in_one_phase(citus_database: Database, world: World) -> None:
    """Enrolling and a learner's small learning-event batch (client ids, outbox) touch one
    campus's shards, on one worker: Citus commits them in one phase. (Written as INSERT ...
    SELECT FROM unnest or COPY, as larger batches are, each commits in two: PREPARE TRANSACTION on
    the worker, a row in pg_dist_transaction, COMMIT PREPARED.)"""
    lesson = world.tree.lessons[0].id
    engine = make_engine(citus_database.settings, citus_database.secrets, pool_size=1)
    sessions = make_sessionmaker(engine)
    remote: list[str] = []
    try:
        async with sessions() as session:
            driver: Any = (await (await session.connection()).get_raw_connection()).driver_connection
            driver.add_log_listener(lambda _c, m: remote.append(str(m.message)))
            await driver.execute("SET citus.log_remote_commands TO on")
            await session.commit()
            async with session.begin():
                newcomer = await factories.user(session, world.admin)
            async with session.begin():
                await enrolments.enrol_self(session, newcomer, world.tree.id)
            async with session.begin():
                batch = ActivityBatch(events=[
                    ActivityIn(world.enrolment_id, "lesson_started", lesson, id=uuid.uuid4()),
                    ActivityIn(world.enrolment_id, "lesson_completed", lesson, id=uuid.uuid4()),
                ])
                assert (await learning.record_activity(session, world.learner, batch, max_batch=100)).accepted == 2
            await asyncio.sleep(0.1)  # asyncpg hands notices to listeners soon, not at once
    finally:
        await engine.dispose()
    issued = [m for m in remote if m.startswith("issuing")]
    assert any("INSERT INTO public.outbox_" in m for m in issued) and any("client_events_" in m for m in issued), issued
    assert [m for m in issued if m.startswith("issuing COMMIT")], "the transactions committed on the worker"
    assert not [m for m in issued if "PREPARE TRANSACTION" in m or "COMMIT PREPARED" in m], issued


async def test_xapi_list(citus_database: Database, world: World) -> None:
    async def path(session: AsyncSession, _: Trace) -> None:
        await learning.statements(
            session, world.admin, agent=world.learner.user_id, verb=None, activity=None, since=None,
            until=None, limit=10, ascending=False, cursor=None, base_url="https://b.example",
        )

    await _run(citus_database, world, path)


async def test_relay_reads_each_campus_from_its_shard(citus_database: Database, world: World) -> None:
    async with traced(citus_database) as (session, trace):
        newcomer = await factories.user(session, world.admin)
        await enrolments.enrol_self(session, newcomer, world.tree.id)  # an unpublished event
        trace.on = True
        work = await relay.work_list(trace.driver, relay.MAX_AGGREGATES, 1000)
        mine = {k: v for k, v in work.items() if k[0] == world.campus_id}
        assert mine, "the new enrolment's event is in the work list"
        for (campus, aggregate, aggregate_id), ((version, seq), run) in mine.items():
            last = run[-1]
            await trace.driver.execute(
                relay._ADVANCE, campus, [aggregate], [aggregate_id], [last["version"]], [seq + 1]
            )
            assert [r["version"] for r in run] == list(range(version + 1, version + 1 + len(run)))
        await trace.stop()
        explained = await trace.explain()
        pending = [sql for sql, _ in explained if sql.strip().startswith(tuple(DELIBERATE))]
        assert len(pending) == 1, "the pending head is read once per round"
        problems = [p for p in router_problems(explained) if not p.split(": ", 1)[1].strip().startswith(tuple(DELIBERATE))]
        assert not problems, "\n\n".join(problems)


# -- the Rust projector's statements (rust/projector/src/store/sql.rs), run as it runs them ----------


def projector_sql() -> dict[str, str]:
    """The projector's SQL constants, read from its source (string literals, concat! and its
    ts!/us! macros expanded), so this test runs exactly what the binary prepares."""
    source = STORE_RS.read_text()
    macros = {
        "ts": lambda e: f"'epoch'::timestamptz + {e} * interval '1 microsecond'",
        "us": lambda e: f"(extract(epoch from {e}) * 1000000)::bigint",
    }
    out = {}
    for name, body in re.findall(r'^const ([A-Z_]+): &str = (.*?);$', source, re.S | re.M):
        parts = re.findall(r'(ts|us)!\("((?:[^"\\]|\\.)*)"\)|"((?:[^"\\]|\\.)*)"', body)
        out[name] = "".join(macros[m](arg) if m else lit.replace('\\"', '"') for m, arg, lit in parts)
    return out


async def test_projector_apply(citus_database: Database, world: World) -> None:
    sql = projector_sql()
    c, e, lesson, quiz = world.campus_id, world.enrolment_id, world.tree.lessons[0].id, world.quiz.id
    course, user, aggregate = world.tree.id, world.learner.user_id, uuid.uuid4()
    batch: list[tuple[str, tuple[Any, ...]]] = [
        ("CLAIM", ("learning", [c], [uuid.uuid4()], [1])),
        ("COUNT", ("learning", 1, 1)),
        ("SELECT_PROGRESS", ([c], [e])),
        ("SELECT_LESSONS", ([c], [e], [lesson])),
        ("UPSERT_PROGRESS", ([c], [e], [course], [user], [1], [1], [0], [0], [0], [lesson], [1], [None])),
        ("UPSERT_LESSONS", ([c], [e], [lesson], [1], [None], ["[]"], [0])),
        ("UPSERT_GRADES", ([c], [e], [quiz], [course], [user], [1], [1.0], [4.0], [1])),
        ("INSERT_STATEMENTS", ([c], [uuid.uuid4()], [user], [course], ["v"], ["a"], [1], [1], [b"x"])),
        ("LESSON_TOTALS", ([c], [course])),
        ("ALLOCATE", ([c], [aggregate], [1])),
        ("INSERT_OUTBOX", ([c], [uuid.uuid4()], ["lmsd.x"], [aggregate], [1], [b"x"])),
        ("LOCK", ([1, 2],)),
    ]
    assert {name for name, _ in batch} == set(sql), "every statement of store/sql.rs"
    async with traced(citus_database) as (_session, trace):
        trace.on = True
        for name, args in batch:
            await trace.driver.execute(sql[name], *args)
        await trace.stop()
        await _assert_one_shard(trace, world.campus_id)


async def test_projector_prepared_reads_stay_on_one_shard(citus_cluster: CitusCluster, world: World) -> None:
    """The projector prepares its statements once per connection (named statements). PostgreSQL
    may switch a prepared statement to a generic plan after five runs; with Citus it keeps planning
    each run with its parameters, so the campus filter still prunes to one shard."""
    sql = projector_sql()
    c, e, lesson, course = world.campus_id, world.enrolment_id, world.tree.lessons[0].id, world.tree.id
    reads = {
        "SELECT_PROGRESS": ("uuid[], uuid[]", [[c], [e]]),
        "SELECT_LESSONS": ("uuid[], uuid[], uuid[]", [[c], [e], [lesson]]),
        "LESSON_TOTALS": ("uuid[], uuid[]", [[c], [course]]),
    }
    conn = await asyncpg.connect(host=HOST, port=citus_cluster.coordinator_port, user=SUPERUSER, database="lmsd")
    try:
        for name, (types, args) in reads.items():
            await conn.execute(f"PREPARE {name.lower()}({types}) AS {sql[name]}")
            params = ", ".join(f"'{{{','.join(map(str, a))}}}'" for a in args)
            for _ in range(7):
                await conn.execute(f"EXECUTE {name.lower()}({params})")
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN EXECUTE {name.lower()}({params})"))
            assert "Task Count: 1" in plan, plan
        plans = await conn.fetch("SELECT name, generic_plans FROM pg_prepared_statements WHERE from_sql")
        assert all(r["generic_plans"] == 0 for r in plans if r["name"] in {n.lower() for n in reads}), plans
    finally:
        await conn.close()


async def test_projector_waits_for_a_batch_prepared_on_a_worker(citus_cluster: CitusCluster, world: World) -> None:
    """On Citus a projector batch commits in two phases (an INSERT ... SELECT FROM unnest always
    does). A worker killed between PREPARE and COMMIT PREPARED keeps that batch prepared, its rows
    locked and not yet visible, until the coordinator's recovery commits it; the next batch of the
    same enrolment must not overwrite it (issue 15's fault test lost events that way). Made here by
    hand on the worker: the projector's read waits for the prepared update and sees it (FOR
    UPDATE), and its upsert of a row it took for new reports that the row was there (xmax)."""
    sql = projector_sql()
    c, e, course, user = world.campus_id, world.enrolment_id, world.tree.id, world.learner.user_id
    lessons = [lesson.id for lesson in world.tree.lessons]
    coordinator = await asyncpg.connect(host=HOST, port=citus_cluster.coordinator_port, user=SUPERUSER, database="lmsd")
    reader = await asyncpg.connect(host=HOST, port=citus_cluster.coordinator_port, user=SUPERUSER, database="lmsd")
    try:
        await coordinator.execute(sql["UPSERT_PROGRESS"], [c], [e], [course], [user], [1], [1], [0], [0], [0], [lessons[0]], [1], [None])
        shards = {
            table: await coordinator.fetchrow(
                "SELECT s.shardid, n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) "
                "JOIN pg_dist_node n USING (groupid) WHERE s.shardid = get_shard_id_for_distribution_column($1, $2::uuid)",
                table, c,
            )
            for table in ("progress", "lesson_progress")
        }
        worker = await asyncpg.connect(host=HOST, port=shards["progress"]["nodeport"], user=SUPERUSER, database="lmsd")
        progress_shard, lessons_shard = (f"{t}_{shards[t]['shardid']}" for t in ("progress", "lesson_progress"))
        insert_lesson = (
            f"INSERT INTO {lessons_shard} (campus_id, enrolment_id, lesson_id, watched, watched_ms) VALUES ($1, $2, $3, '[]', 42)",
            c, e, lessons[1],
        )

        async def prepared(*statements: tuple[Any, ...]) -> str:
            """A transaction on the worker, prepared and left pending (as a killed worker leaves one)."""
            gid = f"lmsd_test_{uuid.uuid4().hex[:8]}"
            await worker.execute("BEGIN")
            for statement, *args in statements:
                await worker.execute(statement, *args)
            await worker.execute(f"PREPARE TRANSACTION '{gid}'")
            return gid

        try:
            gid = await prepared(
                (f"UPDATE {progress_shard} SET events = events + 5 WHERE campus_id = $1 AND enrolment_id = $2", c, e),
                insert_lesson,
            )
            tx = reader.transaction()
            await tx.start()
            read = asyncio.create_task(reader.fetch(sql["SELECT_PROGRESS"], [c], [e]))
            await asyncio.sleep(1)
            assert not read.done(), "the read did not wait for the prepared batch"
            await worker.execute(f"COMMIT PREPARED '{gid}'")
            rows = await asyncio.wait_for(read, 10)
            assert [r["events"] for r in rows] == [6]  # the prepared batch's update, not the row before it
            assert await reader.fetch(sql["SELECT_LESSONS"], [c], [e], [lessons[1]])  # now visible
            await tx.rollback()

            # A row taken for new (read before it was visible) but there when written: xmax says so.
            await worker.execute(f"DELETE FROM {lessons_shard} WHERE campus_id = $1 AND enrolment_id = $2 AND lesson_id = $3", c, e, lessons[1])
            gid = await prepared(insert_lesson)
            tx = reader.transaction()
            await tx.start()
            assert await reader.fetch(sql["SELECT_LESSONS"], [c], [e], [lessons[1]]) == []  # not visible yet
            upsert = asyncio.create_task(reader.fetch(sql["UPSERT_LESSONS"], [c], [e], [lessons[1]], [1], [None], ["[]"], [7]))
            await asyncio.sleep(1)
            assert not upsert.done()
            await worker.execute(f"COMMIT PREPARED '{gid}'")
            written = await asyncio.wait_for(upsert, 10)
            assert [r[3] for r in written] == [False]  # not inserted: the projector applies again
            await tx.rollback()
        finally:
            await worker.close()
    finally:
        await reader.close()
        await coordinator.close()
