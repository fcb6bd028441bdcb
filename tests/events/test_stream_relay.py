"""The event stream itself: each event once in order, dead letters, replay equal to the live
projections, batches of one aggregate in turn, and the relay's recovery without duplicates."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import asyncpg
import pytest
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from lmsd.contracts.v1 import envelope_pb2, learning_pb2
from tests.learning import client, learning_event, setup, wait_progress
from tests.support import Campus, app_dsn, nats_connect

pytestmark = pytest.mark.slow

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


async def _publish_raw(campus: Campus, subject: str, data: bytes, headers: dict[str, str] | None = None) -> int:
    nc = await nats_connect(campus)
    try:
        ack = await nc.jetstream().publish(subject, data, headers=headers)
        return int(ack.seq)
    finally:
        await nc.close()


async def test_undecodable_and_poison_messages_go_to_the_dead_letter_stream(shared_campus: Campus) -> None:
    conn = await asyncpg.connect(app_dsn(shared_campus))
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        campus_id = shared_campus_id(shared_campus)
        # an operator mistake the gradebook cannot get past: a check that full marks violate
        await conn.execute("ALTER TABLE grades ADD CONSTRAINT test_no_full_marks CHECK (best_score < 1.5) NOT VALID")
        qid = (await c.get(f"/api/v1/quizzes/{s.quiz_id}", headers=me.h)).json()["questions"][0]["id"]
        r = await c.post(f"/api/v1/quizzes/{s.quiz_id}/attempts", headers=me.h, json={"answers": {qid: 0}})
        assert r.status_code in (200, 201), r.text
        garbage_seq = await _publish_raw(shared_campus, f"lmsd.{campus_id}.enrolment.{enrolment}.lesson_started", b"\xff\x00 not protobuf")
        # decodable but impossible to apply: ids that are not UUIDs
        poison = envelope_pb2.Event(
            id=str(uuid.uuid4()), campus_id=campus_id, aggregate="enrolment", aggregate_id=enrolment, version=999,
            occurred_at_us=1, recorded_at_us=1, actor_id=me.id,
        )
        poison.lesson_started.CopyFrom(learning_pb2.LessonStarted(course_id="nope", lesson_id="nope"))
        poison_seq = await _publish_raw(shared_campus, f"lmsd.{campus_id}.enrolment.{enrolment}.lesson_started", poison.SerializeToString())
        # the consumers do not block: a good event after them is applied
        r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": [learning_event(enrolment, "lesson_completed", s.lessons["text"])]})
        assert r.status_code == 202
        await wait_progress(c, me, enrolment, lambda p: p["lessons_completed"] == 1)

        letters: list[dict[str, Any]] = []
        for _ in range(120):
            out = shared_campus.lmsd("events", "dlq", "--json")
            assert out.returncode == 0, out.stderr
            letters = json.loads(out.stdout)
            by = {(d["consumer"], d["stream_seq"]) for d in letters}
            graded = [d for d in letters if d["subject"].endswith(f"{enrolment}.quiz_attempt_graded")]
            if {("learning", poison_seq), ("learning", garbage_seq)} <= by and graded:
                break
            await asyncio.sleep(1)
        garbage = [d for d in letters if d["stream_seq"] == garbage_seq]
        assert [d["consumer"] for d in garbage] == ["learning"]
        assert all("not a protobuf" in d["reason"] and d["deliveries"] == 1 for d in garbage)
        poisoned = [d for d in letters if d["stream_seq"] == poison_seq]
        assert [d["consumer"] for d in poisoned] == ["learning"]
        assert all(d["deliveries"] == 5 and "is not a UUID" in d["reason"] for d in poisoned), poisoned
        assert len(graded) == 1 and graded[0]["deliveries"] == 5 and "test_no_full_marks" in graded[0]["reason"], graded
        assert graded[0]["consumer"] == "learning"

        text = shared_campus.lmsd("events", "dlq").stdout
        assert "not a protobuf" in text and f"stream seq {garbage_seq}" in text
        assert "dead letters" in shared_campus.lmsd("status").stdout
        # replaying cannot fix these: kept, exit 1, one line on stderr
        out = shared_campus.lmsd("events", "dlq", "replay", str(garbage[0]["seq"]), str(poisoned[0]["seq"]))
        assert out.returncode == 1 and "still fail" in out.stderr, out.stdout + out.stderr
        assert "kept" in out.stdout
        # the cause of the gradebook's failure is fixed: replaying applies it and removes it
        still = shared_campus.lmsd("events", "dlq", "replay", str(graded[0]["seq"]))
        assert still.returncode == 1 and "test_no_full_marks" in still.stdout
        await conn.execute("ALTER TABLE grades DROP CONSTRAINT test_no_full_marks")
        out = shared_campus.lmsd("events", "dlq", "replay", str(graded[0]["seq"]))
        assert out.returncode == 0, out.stdout + out.stderr
        p = (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=me.h)).json()
        assert p["grades"] == [{"quiz_id": s.quiz_id, "attempts": 1, "best_score": 2.0, "max_score": 2.0}]
    await conn.close()
    assert shared_campus.lmsd("events", "dlq", "replay", str(graded[0]["seq"])).returncode == 1  # gone now
    for d in garbage + poisoned:
        assert shared_campus.lmsd("events", "dlq", "drop", str(d["seq"])).returncode == 0
    bad = shared_campus.lmsd("events", "dlq", "drop", "999999")
    assert bad.returncode == 1 and "no dead letter" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def shared_campus_id(campus: Campus) -> str:
    import tomllib

    return str(tomllib.loads((campus.data_dir / "config.toml").read_text())["campus"]["id"])


async def test_replay_rebuilds_each_projection_equal_to_the_live_one_and_snapshots(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=3)
        for who, enrolment in zip(s.learners, s.enrolments, strict=True):
            events = [learning_event(enrolment, "video_watched", s.lessons["video"], segments=[[i * 1000, i * 1000 + 1500]]) for i in range(50)]
            events += [learning_event(enrolment, "lesson_completed", s.lessons["text"])]
            r = await c.post("/api/v1/learning/events", headers=who.h, json={"events": events})
            assert r.status_code == 202, r.text
        for who, enrolment in zip(s.learners, s.enrolments, strict=True):
            await wait_progress(c, who, enrolment, lambda p: p["events_applied"] == 52)
        # quiz attempts: the graded attempt completes the quiz lesson. The first learner completes
        # the course with it and tries again (no second course_completed); the second tries once.
        question = (await c.get(f"/api/v1/quizzes/{s.quiz_id}", headers=s.teacher.h)).json()["questions"][0]["id"]
        first, second = s.learners[0], s.learners[1]
        rest = [learning_event(s.enrolments[0], "lesson_completed", s.lessons[k]) for k in ("text2", "video")]
        assert (await c.post("/api/v1/learning/events", headers=first.h, json={"events": rest})).status_code == 202
        for who, answers in ((first, {question: 0}), (first, {question: 1}), (second, {})):
            r = await c.post(f"/api/v1/quizzes/{s.quiz_id}/attempts", headers=who.h, json={"answers": answers})
            assert r.status_code in (200, 201), r.text
        p = await wait_progress(c, first, s.enrolments[0], lambda p: p["events_applied"] == 52 + 2 + 4 + 1)
        assert p["lessons_completed"] == 4 and p["completed_at"] is not None and p["quiz_attempts"] == 2
        p = await wait_progress(c, second, s.enrolments[1], lambda p: p["events_applied"] == 52 + 2)
        assert p["lessons_completed"] == 2 and p["completed_at"] is None
        assert any(x["lesson_id"] == s.lessons["quiz"] and x["completed_at"] for x in p["lessons"])
    conn = await asyncpg.connect(app_dsn(shared_campus))
    try:
        for _ in range(100):  # every consumer caught up with the whole stream (other tests' events too)
            out = json.loads(shared_campus.lmsd("events", "status", "--json").stdout)
            if out["relay"]["backlog"] == 0 and all(x["pending"] + x["unacknowledged"] == 0 for x in out["consumers"]):
                break
            await asyncio.sleep(0.3)
        for name in ("progress", "gradebook", "xapi", "learning"):
            first = shared_campus.lmsd("events", "replay", "--projection", name, "--from-start", "--json")
            assert first.returncode == 0, first.stdout + first.stderr
            report = json.loads(first.stdout)
            assert report["comparable"] and not any(report["differences"].values()), report
            assert report["events"] > 0 and report["snapshot_seq"] is None
            # the next replay starts from the snapshot: reads only what came after it
            again = shared_campus.lmsd("events", "replay", "--projection", name, "--json")
            assert again.returncode == 0, again.stdout + again.stderr
            second = json.loads(again.stdout)
            assert second["snapshot_seq"] == report["to_seq"] and second["events"] < report["events"]
            assert not any(second["differences"].values())
        rows = await conn.fetchval("SELECT count(*) FROM lmsd_replay.progress")
        assert rows == await conn.fetchval("SELECT count(*) FROM progress")
        # a replay that differs says so: damage the live table
        await conn.execute("UPDATE progress SET watched_ms = watched_ms + 1 WHERE enrolment_id = $1", uuid.UUID(s.enrolments[0]))
        bad = shared_campus.lmsd("events", "replay", "--projection", "progress")
        assert bad.returncode == 1 and "differs" in bad.stderr, bad.stdout + bad.stderr
        await conn.execute("UPDATE progress SET watched_ms = watched_ms - 1 WHERE enrolment_id = $1", uuid.UUID(s.enrolments[0]))
    finally:
        await conn.close()
    out = shared_campus.lmsd("events", "replay", "--projection", "nope")
    assert out.returncode == 1 and "no projection" in out.stderr


async def test_stream_holds_each_event_once_with_its_id_and_order(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        for _ in range(3):
            batch = [learning_event(enrolment, "lesson_started", s.lessons["text"]) for _ in range(40)]
            assert (await c.post("/api/v1/learning/events", headers=me.h, json={"events": batch})).status_code == 202
        await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == 121)
    versions = []
    batches: dict[str, list[int]] = {}
    for m in await _aggregate_messages(shared_campus, enrolment):
        ev = envelope_pb2.Event()
        ev.ParseFromString(m.data)
        assert m.headers and m.headers["Nats-Msg-Id"] == ev.id
        assert m.subject.endswith("." + ev.WhichOneof("body"))
        versions.append(ev.version)
        if "Nats-Batch-Id" in m.headers:
            batches.setdefault(m.headers["Nats-Batch-Id"], []).append(m.metadata.sequence.stream)
    assert versions == list(range(1, 122))  # each once, in the aggregate's order
    # the relay sent each request's 40 events as atomic batches, each stored contiguously
    assert sum(map(len, batches.values())) >= 80, batches
    assert all(seqs == list(range(seqs[0], seqs[0] + len(seqs))) for seqs in batches.values())
    nc = await nats_connect(shared_campus)
    try:
        assert (await nc.jetstream().stream_info("LMSD_EVENTS")).config.allow_atomic is True
    finally:
        await nc.close()


class _Counter:
    """A projection with a read-modify-write in Python: events counted per aggregate."""

    name: str = "lock-test"
    tables: tuple[str, ...] = ("lock_test_counts",)

    async def apply(self, conn: asyncpg.Connection, events: list[Any], *, live: bool) -> list[Any]:
        for aggregate in {d.event.aggregate_id for d in events}:
            seen = await conn.fetchval("SELECT n FROM lock_test_counts WHERE id = $1", aggregate) or 0
            mine = sum(1 for d in events if d.event.aggregate_id == aggregate)
            await conn.execute(
                "INSERT INTO lock_test_counts VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = excluded.n",
                aggregate, seen + mine,
            )
        return []


async def test_batches_of_one_aggregate_apply_one_after_the_other(shared_campus: Campus) -> None:
    """Concurrent batches of one aggregate (several pulls, several workers) serialise on the
    aggregate's advisory lock, so a projection's read-modify-write is never lost."""
    from lmsd.events.consumers import Delivered, apply_batch, lock_keys

    campus_id, aggregate = shared_campus_id(shared_campus), str(uuid.uuid4())

    def event() -> Delivered:
        ev = envelope_pb2.Event(id=str(uuid.uuid4()), campus_id=campus_id, aggregate="enrolment", aggregate_id=aggregate)
        ev.lesson_started.CopyFrom(learning_pb2.LessonStarted(course_id=str(uuid.uuid4()), lesson_id=str(uuid.uuid4())))
        return Delivered(ev, 0)

    holder, other = await asyncpg.connect(app_dsn(shared_campus)), await asyncpg.connect(app_dsn(shared_campus))
    try:
        await holder.execute("CREATE TABLE IF NOT EXISTS lock_test_counts (id uuid PRIMARY KEY, n int)")
        counter = _Counter()
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", lock_keys(counter.name, {aggregate}))
        second = asyncio.create_task(apply_batch(other, counter, [event(), event()]))
        await asyncio.sleep(0.5)
        assert not second.done()  # waits for the transaction holding the aggregate
        assert await apply_batch(holder, counter, [event()]) == 1  # the holder applies meanwhile
        await tx.commit()
        assert await asyncio.wait_for(second, 10) == 2
        # it read the count after the holder's commit: 1 + 2, nothing overwritten
        assert await holder.fetchval("SELECT n FROM lock_test_counts WHERE id = $1", uuid.UUID(aggregate)) == 3
    finally:
        await holder.execute("DROP TABLE IF EXISTS lock_test_counts")
        await holder.close()
        await other.close()


async def _published(conn: asyncpg.Connection, enrolment: str, timeout: float = 30) -> asyncpg.Record:
    """Wait until the relay has published every event of the enrolment; its aggregate row."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await conn.fetchrow(
            "SELECT version, published_version, published_seq, attempts, last_error FROM event_aggregates "
            "WHERE aggregate = 'enrolment' AND aggregate_id = $1", uuid.UUID(enrolment),
        )
        if row is not None and row["published_version"] == row["version"]:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"not published in {timeout}s: {row}"
        await asyncio.sleep(0.2)


async def _aggregate_messages(campus: Campus, enrolment: str) -> list[Msg]:
    """Every message on the enrolment's subjects, in stream order."""
    nc = await nats_connect(campus)
    try:
        sub = await nc.jetstream().pull_subscribe(
            f"lmsd.{shared_campus_id(campus)}.enrolment.{enrolment}.*", durable=None, stream="LMSD_EVENTS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        return await sub.fetch(1000, timeout=3)
    finally:
        await nc.close()


async def _stream_versions(campus: Campus, enrolment: str) -> list[int]:
    """The version of every message on the enrolment's subjects, in stream order (-1: not an event)."""
    versions = []
    for m in await _aggregate_messages(campus, enrolment):
        ev = envelope_pb2.Event()
        try:
            ev.ParseFromString(m.data)
        except DecodeError:
            versions.append(-1)
            continue
        versions.append(ev.version)
    return versions


async def test_the_relay_recovers_lost_markings_and_foreign_messages_without_duplicates(shared_campus: Campus) -> None:
    """Batches published and then forgotten (the relay died before marking them) are recognised
    as the stream's own and marked, not published again; a foreign message on the aggregate's
    subjects is stepped over, and our next batch follows it."""
    conn = await asyncpg.connect(app_dsn(shared_campus))
    try:
        async with client(shared_campus) as c:
            s = await setup(c, learners=1)
            me, enrolment = s.learners[0], s.enrolments[0]

            async def record(n: int) -> None:
                batch = [learning_event(enrolment, "lesson_started", s.lessons["text"]) for _ in range(n)]
                r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": batch})
                assert r.status_code == 202, r.text

            await record(10)
            before = await _published(conn, enrolment)
            await record(20)
            after = await _published(conn, enrolment)
            assert after["version"] == before["version"] + 20
            # the relay "forgets" the second batch: its aggregate back where it was before it
            await conn.execute(
                "UPDATE event_aggregates SET published_version = $2, published_seq = $3 WHERE aggregate_id = $1",
                uuid.UUID(enrolment), before["published_version"], before["published_seq"],
            )
            recovered = await _published(conn, enrolment)
            assert (recovered["published_version"], recovered["published_seq"]) == (after["version"], after["published_seq"])
            # refused (within the duplicate window for the repeated ids, after it for the moved
            # sequence), then recognised as already stored
            assert recovered["attempts"] >= 1, recovered
            reason = recovered["last_error"]
            assert "duplicate message id" in reason or "wrong last sequence" in reason, recovered
            versions = await _stream_versions(shared_campus, enrolment)
            assert versions == list(range(1, after["version"] + 1))  # nothing published twice

            # a foreign message on the aggregate's subjects: our events continue after it
            await _publish_raw(shared_campus, f"lmsd.{shared_campus_id(shared_campus)}.enrolment.{enrolment}.lesson_started", b"\x00 foreign")
            await record(5)
            last = await _published(conn, enrolment)
            assert last["version"] == after["version"] + 5
            versions = await _stream_versions(shared_campus, enrolment)
            assert versions == [*range(1, after["version"] + 1), -1, *range(after["version"] + 1, last["version"] + 1)]
            await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == last["version"])
    finally:
        await conn.close()
