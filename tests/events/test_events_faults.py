"""100,000 learning events through the API while the relay is killed -9, lmsd-projector is
killed -9, PostgreSQL and nats-server are restarted and, on Citus (LMSD_TEST_CITUS=1), the worker
holding the campus's shards is killed -9: at the end every event is in the stream exactly once and
every projection counted each exactly once. Then PostgreSQL away for longer than
JetStream redelivers. Both on one campus, in file order: each fault ends with the campus healthy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.citus.campus import campus_on_other_worker, is_unavailable, worker_of
from tests.conftest import running_campus
from tests.learning import admin_of, client, setup
from tests.support import Campus, app_dsn, nats_connect, on_citus

pytestmark = pytest.mark.slow

TOTAL = 100_000
BATCH = 1000
LEARNERS = 20


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One install for the module's two faults (scripts/test runs a module on one xdist worker)."""
    yield from running_campus(tmp_path_factory)


def _pid(campus: Campus, component: str) -> int:
    state = json.loads((campus.data_dir / "run" / "state.json").read_text())
    pid = state["components"][component]["pid"]
    assert pid, state["components"][component]
    return int(pid)


def _restarts(campus: Campus, component: str) -> int:
    state = json.loads((campus.data_dir / "run" / "state.json").read_text())
    return int(state["components"][component]["restarts"])


async def _wait_restarted(campus: Campus, component: str, before: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads((campus.data_dir / "run" / "state.json").read_text())["components"][component]
        if state["restarts"] > before and state["state"] == "running":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{component} was not restarted")


async def test_100k_events_survive_relay_projector_postgres_and_nats_restarts(campus: Campus) -> None:
    async with client(campus) as c:
        s = await setup(c, learners=LEARNERS)
        lessons = [s.lessons["text"], s.lessons["text2"], s.lessons["quiz"]]
        sent = 0
        faults: list[str] = []

        run = uuid.uuid4()

        def batch_for(n: int) -> list[dict[str, Any]]:
            enrolment = s.enrolments[n % LEARNERS]
            events: list[dict[str, Any]] = []
            for i in range(BATCH):
                k = (n * BATCH + i) % 4
                # the client's own event ids: a batch sent again after an error is not recorded twice
                common = {"id": str(uuid.uuid5(run, f"{n}:{i}")), "enrolment_id": enrolment}
                if k == 3:
                    start = (i * 997) % 3_600_000
                    events.append({**common, "type": "video_watched", "lesson_id": s.lessons["video"], "segments": [[start, start + 5000]]})
                else:
                    events.append({**common, "type": "lesson_started" if k else "lesson_completed", "lesson_id": lessons[k % 3]})
            return events

        async def post(n: int) -> None:
            nonlocal sent
            who = s.learners[n % LEARNERS]
            for _ in range(60):
                try:
                    r = await c.post("/api/v1/learning/events", headers=who.h, json={"events": batch_for(n)})
                except httpx.TransportError:  # the answer was lost: send the same events again
                    await asyncio.sleep(0.5)
                    continue
                if r.status_code == 429:  # the gateway's write budget: wait as told
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                if r.status_code >= 500:  # the database is restarting
                    await asyncio.sleep(0.5)
                    continue
                assert r.status_code == 202, r.text
                sent += BATCH
                return
            raise AssertionError(f"batch {n} refused 60 times")

        batches = TOTAL // BATCH
        for n in range(batches):
            await post(n)
            if n == batches // 5:
                before = _restarts(campus, "relay")
                os.kill(_pid(campus, "relay"), signal.SIGKILL)
                faults.append("relay killed -9")
                await _wait_restarted(campus, "relay", before)
            elif n == 2 * batches // 5:
                before = _restarts(campus, "projector-0")
                os.kill(_pid(campus, "projector-0"), signal.SIGKILL)
                faults.append("projector killed -9")
            elif n == batches // 2:
                before = _restarts(campus, "postgres")
                os.kill(_pid(campus, "postgres"), signal.SIGINT)  # fast shutdown; the supervisor starts it again
                faults.append("postgres restarted")
                await _wait_restarted(campus, "postgres", before)
            elif n == 3 * batches // 5:
                before = _restarts(campus, "nats")
                os.kill(_pid(campus, "nats"), signal.SIGTERM)  # supervisor starts it again
                faults.append("nats-server restarted")
                await _wait_restarted(campus, "nats", before)
            elif n == 4 * batches // 5:
                before = _restarts(campus, "relay")
                os.kill(_pid(campus, "relay"), signal.SIGKILL)
                faults.append("relay killed -9 again")
            elif n == 9 * batches // 10 and on_citus():
                victim = await _kill_the_worker_of_campus_a(c, campus, batch_for(n + 1), s.learners[(n + 1) % LEARNERS])
                faults.append(f"{victim} killed -9")
        assert sent == TOTAL

    # everything drains: relay backlog 0, every consumer caught up
    deadline = time.monotonic() + 600
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = campus.lmsd("events", "status", "--json")
        if out.returncode == 0:
            report = json.loads(out.stdout)
            if report["relay"]["backlog"] == 0 and all(x["pending"] + x["unacknowledged"] == 0 for x in report["consumers"]):
                break
        await asyncio.sleep(1)
    else:
        raise AssertionError(f"did not drain: {report}")
    assert report["dead_letters"] == 0, report
    assert _restarts(campus, "relay") >= 2 and _restarts(campus, "projector-0") >= 1 and _restarts(campus, "nats") >= 1
    assert _restarts(campus, "postgres") >= 1
    if on_citus():
        assert _restarts(campus, victim) >= 1, faults

    enrolments = [uuid.UUID(e) for e in s.enrolments]
    recorded = TOTAL + LEARNERS  # plus one enrolment_created each
    conn = await asyncpg.connect(app_dsn(campus))
    try:
        versions = await conn.fetch(
            "SELECT aggregate_id, version, published_version FROM event_aggregates WHERE aggregate = 'enrolment' AND aggregate_id = ANY($1::uuid[])",
            enrolments,
        )
        assert sum(r["version"] for r in versions) == recorded
        assert all(r["published_version"] == r["version"] for r in versions)
        progress = await conn.fetch("SELECT enrolment_id, events FROM progress WHERE enrolment_id = ANY($1::uuid[])", enrolments)
        by_version = {r["aggregate_id"]: r["version"] for r in versions}
        assert {r["enrolment_id"]: r["events"] for r in progress} == by_version  # each event counted once
        statements = await conn.fetchval(
            "SELECT count(*) FROM xapi_statements s JOIN outbox o ON o.campus_id = s.campus_id AND o.id = s.id "
            "WHERE o.aggregate_id = ANY($1::uuid[])",
            enrolments,
        )
        assert statements == recorded
        for consumer in ("learning",):
            applied = await conn.fetchval(
                "SELECT count(*) FROM consumer_applied a JOIN outbox o ON o.campus_id = a.campus_id AND o.id = a.event_id "
                "WHERE a.consumer = $1 AND o.aggregate_id = ANY($2::uuid[])",
                consumer, enrolments,
            )
            assert applied == recorded, consumer
        pending = await conn.fetchval("SELECT count(*) FROM event_aggregates WHERE version > published_version")
        assert pending == 0
    finally:
        await conn.close()

    # the stream holds each event once, and each enrolment's events in version order
    nc = await nats_connect(campus)
    try:
        js = nc.jetstream()
        seen: dict[str, list[int]] = {}
        ids: set[str] = set()
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        from lmsd.contracts.v1 import envelope_pb2

        sub = await js.pull_subscribe(
            "lmsd.*.enrolment.>", durable=None, stream="LMSD_EVENTS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, max_ack_pending=-1),
        )
        count = 0
        while True:
            try:
                msgs = await sub.fetch(5000, timeout=3)
            except TimeoutError:
                break
            for m in msgs:
                ev = envelope_pb2.Event()
                ev.ParseFromString(m.data)
                if ev.aggregate_id in s.enrolments:
                    count += 1
                    ids.add(ev.id)
                    seen.setdefault(ev.aggregate_id, []).append(ev.version)
        assert count == recorded and len(ids) == recorded, (count, len(ids), faults)
        for enrolment, got in seen.items():
            assert got == list(range(1, len(got) + 1)), f"{enrolment}: out of order or missing"
    finally:
        await nc.close()


async def _kill_the_worker_of_campus_a(c: httpx.AsyncClient, campus: Campus, events: list[dict[str, Any]], who: Any) -> str:
    """On Citus: kill -9 the worker that holds campus A's shards. The next batch gets a 503
    problem+json at once (no hang, no 500) and a campus whose shards are on the other worker is
    served meanwhile; the batch is sent again by the loop until the supervisor has the worker back.
    Returns the worker's component name."""
    campus_a = (await c.get("/api/v1/campus")).json()["id"]
    victim = await worker_of(campus, campus_a)
    other = await campus_on_other_worker(c, campus, await admin_of(c), victim)
    os.kill(_pid(campus, victim), signal.SIGKILL)
    started = time.monotonic()
    while (r := await c.post("/api/v1/learning/events", headers=who.h, json={"events": events})).status_code == 429:
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    assert time.monotonic() - started < 10, "the request waited for the dead worker"
    is_unavailable(r)
    assert (await c.get("/api/v1/courses", headers=other.h)).status_code == 200
    return victim


OUTAGE_S = 65  # longer than any consumer's deliveries last (6 deliveries, 10 s ack wait)


async def test_consumers_hold_their_batches_while_the_database_is_away(campus: Campus) -> None:
    """PostgreSQL stopped for longer than JetStream would keep redelivering: the projector (Rust)
    and the media worker (Python) hold what they fetched, saying "in progress", and apply it
    when the database is back. Nothing is dead-lettered, nothing is dropped."""
    from lmsd.contracts.v1 import envelope_pb2, learning_pb2, media_pb2
    from lmsd.runtime import control
    from lmsd.settings import load_settings

    async with client(campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": [
            {"enrolment_id": enrolment, "type": "lesson_started", "lesson_id": s.lessons["text"]},
        ]})
        assert r.status_code == 202, r.text
    campus_id = str(load_settings(campus.data_dir).campus.id)
    course = s.course["id"]
    learning_ids = [str(uuid.uuid4()) for _ in range(40)]
    media_ids = [str(uuid.uuid4()) for _ in range(5)]
    settings = load_settings(campus.data_dir)
    await asyncio.to_thread(control.command, settings, "pause", "postgres")
    nc = await nats_connect(campus)
    try:
        js = nc.jetstream()
        # events that reach the consumers while the database is away (published straight to the
        # stream: the API and the relay need the database)
        for n, event_id in enumerate(learning_ids):
            ev = envelope_pb2.Event(
                id=event_id, campus_id=campus_id, aggregate="enrolment", aggregate_id=enrolment, version=1000 + n,
                occurred_at_us=1_764_000_000_000_000 + n, recorded_at_us=1_764_000_000_000_000 + n, actor_id=me.id,
            )
            ev.lesson_started.CopyFrom(learning_pb2.LessonStarted(course_id=course, lesson_id=s.lessons["text2"]))
            await js.publish(f"lmsd.{campus_id}.enrolment.{enrolment}.lesson_started", ev.SerializeToString(), headers={"Nats-Msg-Id": event_id})
        video = str(uuid.uuid4())
        for n, event_id in enumerate(media_ids):
            ev = envelope_pb2.Event(
                id=event_id, campus_id=campus_id, aggregate="transcode", aggregate_id=video, version=0,
                occurred_at_us=1_764_000_000_000_000 + n, recorded_at_us=1_764_000_000_000_000 + n,
            )
            ev.transcode_progress.CopyFrom(media_pb2.TranscodeProgress(course_id=course, percent=10 * n, attempt=1))
            await js.publish(f"lmsd.{campus_id}.transcode.{video}.transcode_progress", ev.SerializeToString(), headers={"Nats-Msg-Id": event_id})
    finally:
        await nc.close()
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(control.command, settings, "resume", "postgres")

    conn = await asyncpg.connect(app_dsn(campus))
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = await conn.fetch(
                "SELECT consumer, count(*) AS n FROM consumer_applied WHERE event_id = ANY($1::uuid[]) GROUP BY consumer",
                [uuid.UUID(i) for i in learning_ids + media_ids],
            )
            applied = {r["consumer"]: int(r["n"]) for r in rows}
            if applied == {"learning": len(learning_ids), "media": len(media_ids)}:
                break
            assert time.monotonic() < deadline, f"not applied after the outage: {applied}"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    report = json.loads(campus.lmsd("events", "status", "--json").stdout)
    assert report["dead_letters"] == 0, report
    projector_log = (campus.data_dir / "logs" / "projector-0.log").read_text()
    assert "holding the batch" in projector_log or "cannot use the database" in projector_log
