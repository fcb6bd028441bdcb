"""The outbox relay: publishes committed outbox rows to JetStream, in order per aggregate.

One relay publishes at a time (a PostgreSQL advisory lock; a second one waits). What has been
published is recorded per aggregate, never per row: ``event_aggregates.published_version`` and
``published_seq`` (the stream sequence of that event) are the relay's expectation of the stream,
and outbox rows stay as the writer wrote them. Each round it takes the aggregates whose version
is ahead of their published version (least recently published first, through a small partial
index), reads each one's unpublished events in version order, keeps only the run that directly
follows the published version (so an aggregate's events are never reordered or skipped), and
publishes each run with

- ``Nats-Msg-Id`` = the event id: a run published twice (relay killed after publishing, before
  recording it) is recognised by the stream as a duplicate, and
- ``Nats-Expected-Last-Subject-Sequence`` (+ ``…-Subject`` = the aggregate's subjects): the
  stream refuses the event unless the aggregate's last stored event is the one we think.

An aggregate's run of events goes as JetStream atomic batches (``Nats-Batch-Id``, NATS 2.12+;
the stream allows them; a single event is a batch of one): the expected-sequence check sits on
the batch's first message and gates the whole batch, so the run is stored all or nothing,
contiguously, with one round trip instead of one per event.

Different aggregates are published concurrently (at most ``MAX_INFLIGHT`` batches at once, under
the server's limit per stream). Published versions advance in one statement per round; a
failing aggregate's attempts and last error are kept on it, and it is retried with back-off.
Run: ``python -m lmsd.events.relay --data-dir D`` (the supervisor starts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import APIError

from lmsd.credentials import Secrets
from lmsd.events import connection, process
from lmsd.events.envelope import aggregate_filter
from lmsd.events.streams import EVENTS_STREAM
from lmsd.settings import Settings

log = logging.getLogger("lmsd.events.relay")
LOCK_KEY = 0x6C6D7364_0001  # pg advisory lock: one relay per database
MAX_BATCH = 1000  # messages per atomic batch (the server's limit)
MAX_INFLIGHT = 32  # atomic batches open at once (the server allows 50 per stream)
MAX_AGGREGATES = 2000  # aggregates per round

# The work list, in two steps that Citus routes (docs/citus.md, "The relay's work list"): the
# pending aggregates of every campus, least recently published first (ix_event_aggregates_pending;
# on Citus the one statement of the relay that reads every shard), then per campus the unpublished
# events of its pending aggregates, in version order (uq_outbox_aggregate_version), read from the
# campus's own shard. One statement joining the two laterally is refused by Citus.
_PENDING = """
SELECT campus_id, aggregate, aggregate_id, published_version, published_seq
FROM event_aggregates WHERE version > published_version
ORDER BY published_seq LIMIT $1
"""
_RUNS = f"""
SELECT a.aggregate, a.aggregate_id, o.seq, o.id, o.subject, o.version, o.payload
FROM unnest($2::text[], $3::uuid[], $4::bigint[]) AS a(aggregate, aggregate_id, published_version)
CROSS JOIN LATERAL (
  SELECT o.seq, o.id, o.subject, o.version, o.payload FROM outbox o
  WHERE o.campus_id = $1 AND o.aggregate = a.aggregate AND o.aggregate_id = a.aggregate_id
    AND o.version > a.published_version
  ORDER BY o.version LIMIT {MAX_BATCH}
) AS o
LIMIT $5
"""
_ADVANCE = """
UPDATE event_aggregates a SET published_version = u.v, published_seq = u.s, attempts = 0, last_error = ''
FROM unnest($2::text[], $3::uuid[], $4::bigint[], $5::bigint[]) AS u(g, i, v, s)
WHERE a.campus_id = $1 AND a.aggregate = u.g AND a.aggregate_id = u.i
  AND (a.published_version < u.v OR (a.published_version = u.v AND a.published_seq < u.s))
"""
_FAILED = """
UPDATE event_aggregates SET attempts = attempts + 1, last_error = $4
WHERE campus_id = $1 AND aggregate = $2 AND aggregate_id = $3
"""

Key = tuple[uuid.UUID, str, uuid.UUID]
# an aggregate's (published version, published stream seq) and its unpublished events in version order
Work = dict[Key, tuple[tuple[int, int], list[asyncpg.Record]]]

# The work list is read through the indexes, in their order, stopping at the round's size. The
# planner's estimates of a queue are always stale (rows arrive and leave by the thousand between
# ANALYZEs) and, left to itself, it bitmap-scans every pending row and sorts them on disk each
# round: 10x the cost per event while a backlog drains (docs/benchmarks.md).
QUEUE_PLANS = {"enable_bitmapscan": "off", "enable_sort": "off"}



@dataclass
class Outcome:
    sent: dict[Key, tuple[int, int]] = field(default_factory=dict)  # key -> (version, stream seq) of its last sent event
    events: int = 0
    failed: dict[Key, str] = field(default_factory=dict)  # key -> why its next event was not published
    resync: dict[Key, tuple[str, int]] = field(default_factory=dict)  # key -> (last msg id, its stream seq)


class Refused(Exception):
    """The stream refused a publish or a batch (its error code and description)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{description} ({code})")
        self.code = code


class Relay:
    def __init__(self, pool: asyncpg.Pool, nc: NATS, batch: int = 10000, timeout_s: float = 5.0) -> None:
        self.pool = pool
        self.nc = nc
        self.js = nc.jetstream()
        self.batch = batch
        self.timeout_s = timeout_s
        self.inflight = asyncio.Semaphore(MAX_INFLIGHT)

    async def run_once(self) -> tuple[int, int]:
        """Publish one round. Returns (events published, aggregates failing)."""
        async with self.pool.acquire() as conn:
            work = await work_list(conn, MAX_AGGREGATES, self.batch)
        if not work:
            return 0, 0
        outcome = Outcome()
        await asyncio.gather(*(self._publish_chain(key, at, chain, outcome) for key, (at, chain) in work.items()))
        await self._record(outcome)
        return outcome.events, len(outcome.failed)

    async def _publish_chain(
        self, key: Key, published: tuple[int, int], chain: list[asyncpg.Record], outcome: Outcome
    ) -> None:
        version, last_seq = published
        run: list[asyncpg.Record] = []
        for row in chain:  # in version order
            if row["version"] != version + len(run) + 1:
                break  # an earlier version is not visible yet: wait, never reorder or skip
            run.append(row)
        filter_subject = aggregate_filter(*key)
        for start in range(0, len(run), MAX_BATCH):
            part = run[start : start + MAX_BATCH]
            try:
                async with self.inflight:
                    seq = await self._publish(part, last_seq, filter_subject)
            except Refused as exc:
                # the stream's last message on the aggregate is not the one we expected (or the
                # batch repeats a message id it already holds): find out where the stream is
                found = await self._last_of(filter_subject)
                if found is not None:
                    outcome.resync[key] = found
                outcome.failed[key] = str(exc)
                return
            except (TimeoutError, NatsError) as exc:
                outcome.failed[key] = str(exc) or type(exc).__name__
                return
            last_seq = seq  # a batch is stored contiguously; the ack names its last message
            outcome.sent[key] = (int(part[-1]["version"]), seq)
            outcome.events += len(part)

    async def _publish(self, part: list[asyncpg.Record], last_seq: int, filter_subject: str) -> int:
        """Publish one aggregate's consecutive events as one atomic batch (a single event is a
        batch of one); returns the stream sequence of the last."""
        batch_id = uuid.uuid4().hex
        size = len(part)
        for n, row in enumerate(part, 1):
            headers = {"Nats-Msg-Id": str(row["id"]), "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(n)}
            if n == 1:  # checked against the stream as it was before the batch
                headers["Nats-Expected-Last-Subject-Sequence"] = str(last_seq)
                headers["Nats-Expected-Last-Subject-Sequence-Subject"] = filter_subject
            if n < size:
                await self.nc.publish(row["subject"], row["payload"], headers=headers)
        headers["Nats-Batch-Commit"] = "1"
        reply = await self.nc.request(part[-1]["subject"], part[-1]["payload"], timeout=self.timeout_s, headers=headers)
        answer = json.loads(reply.data)
        if "error" in answer:
            error = answer["error"]
            raise Refused(int(error.get("err_code") or 0), str(error.get("description") or error))
        if int(answer.get("count") or 0) != size:
            raise Refused(0, f"batch acknowledged with {answer.get('count')} messages, not {size}")
        return int(answer["seq"])

    async def _last_of(self, filter_subject: str) -> tuple[str, int] | None:
        """The message id and stream sequence of the last message on the aggregate's subjects."""
        try:
            msg = await self.js.get_last_msg(EVENTS_STREAM, filter_subject)
        except (APIError, TimeoutError, NatsError):
            return None
        if msg.seq is None:
            return None
        return (msg.headers or {}).get("Nats-Msg-Id", ""), int(msg.seq)

    async def _record(self, outcome: Outcome) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            last = dict(outcome.sent)
            for key, (msg_id, seq) in outcome.resync.items():
                last[key] = await self._resynced(conn, key, msg_id, seq, last.get(key, (0, 0))[0])
            by_campus: dict[uuid.UUID, list[Key]] = defaultdict(list)
            for key in last:
                by_campus[key[0]].append(key)
            for campus, keys in by_campus.items():  # one statement per campus: one shard each
                await conn.execute(
                    _ADVANCE,
                    campus, [k[1] for k in keys], [k[2] for k in keys],
                    [last[k][0] for k in keys], [last[k][1] for k in keys],
                )
            for key, reason in outcome.failed.items():
                await conn.execute(_FAILED, *key, reason[:500])

    @staticmethod
    async def _resynced(conn: asyncpg.Connection, key: Key, msg_id: str, seq: int, sent_version: int) -> tuple[int, int]:
        """The stream's last message of an aggregate is not the one we recorded. If it is one of
        our own events (published, then the recording was lost beyond the duplicate window),
        it and its predecessors are published: the published version moves to it. If it is not
        ours (someone else published on the aggregate's subjects), only our expectation of the
        stream moves to it: our events are never skipped."""
        campus, aggregate, aggregate_id = key
        version = None
        with contextlib.suppress(ValueError):
            version = await conn.fetchval(
                "SELECT version FROM outbox WHERE campus_id = $1 AND id = $2 AND aggregate = $3 AND aggregate_id = $4",
                campus, uuid.UUID(msg_id), aggregate, aggregate_id,
            )
        if version is None:
            log.warning("foreign message %s at stream seq %d on %s %s; continuing after it", msg_id or "-", seq, aggregate, aggregate_id)
            current = await conn.fetchval(
                "SELECT published_version FROM event_aggregates WHERE campus_id = $1 AND aggregate = $2 AND aggregate_id = $3",
                *key,
            )
            return max(int(current or 0), sent_version), seq
        return int(version), seq

    async def prune(self, retention_h: float) -> int:
        """Forget published events older than the retention (unpublished ones are kept)."""
        async with self.pool.acquire() as conn:
            result = await conn.execute(
                "DELETE FROM outbox o USING event_aggregates a "
                "WHERE o.created_at < now() - make_interval(secs => $1) AND a.campus_id = o.campus_id "
                "AND a.aggregate = o.aggregate AND a.aggregate_id = o.aggregate_id AND o.version <= a.published_version",
                retention_h * 3600,
            )
        return int(result.split()[-1])


async def work_list(conn: asyncpg.Connection, aggregates: int, events: int) -> Work:
    """A round's work: up to ``aggregates`` pending aggregates of every campus (least recently
    published first), then, campus by campus in that order, their unpublished events in version
    order, up to ``events`` in all. Only this relay (it holds the lock) moves a published version,
    so the two reads agree although they are two statements."""
    pending = await conn.fetch(_PENDING, aggregates)
    by_campus: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for row in pending:
        by_campus[row["campus_id"]].append(row)
    work: Work = {}
    for campus, rows in by_campus.items():
        left = events - sum(len(chain) for _, chain in work.values())
        if left <= 0:
            break
        start = {(campus, r["aggregate"], r["aggregate_id"]): (int(r["published_version"]), int(r["published_seq"])) for r in rows}
        runs = await conn.fetch(
            _RUNS, campus, [r["aggregate"] for r in rows], [r["aggregate_id"] for r in rows],
            [r["published_version"] for r in rows], left,
        )
        for run in runs:
            key = (campus, run["aggregate"], run["aggregate_id"])
            work.setdefault(key, (start[key], []))[1].append(run)
    return work


async def backlog(conn: asyncpg.Connection) -> dict[str, Any]:
    """What `lmsd status` shows for the relay: unpublished events, the age of the oldest and the
    failed attempts of the most failing aggregate."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(a.version - a.published_version), 0) AS n, max(a.attempts) AS attempts, "
        "EXTRACT(EPOCH FROM now() - min(o.created_at)) AS age "
        "FROM event_aggregates a JOIN outbox o ON o.campus_id = a.campus_id AND o.aggregate = a.aggregate "
        "AND o.aggregate_id = a.aggregate_id AND o.version = a.published_version + 1 "
        "WHERE a.version > a.published_version"
    )
    assert row is not None
    return {"backlog": int(row["n"]), "lag_s": float(row["age"] or 0.0), "max_attempts": int(row["attempts"] or 0)}


async def main(settings: Settings, secrets: Secrets, stop: asyncio.Event, beat: process.Heartbeat) -> None:
    pool = await connection.pg_pool(settings, secrets, size=3, server_settings=QUEUE_PLANS)
    nc = await connection.nats_service(settings, secrets, "lmsd-relay")
    relay = Relay(pool, nc, batch=settings.events.relay_batch)
    try:
        while not stop.is_set():
            try:
                await _hold_and_publish(relay, settings, stop, beat)
            except connection.DATABASE_ERRORS as exc:
                log.warning("database: %s; taking the lock again", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        await pool.close()


async def _hold_and_publish(relay: Relay, settings: Settings, stop: asyncio.Event, beat: process.Heartbeat) -> None:
    """Take the relay lock (one relay per database) on a connection of its own, listen there for
    new outbox rows, and publish while that connection lives: when the database restarts, the
    lock is gone with it and is taken again before anything more is published."""
    async with relay.pool.acquire() as lock_conn:
        while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            log.info("another relay holds the lock; waiting")
            beat.detail = "standby: another relay publishes"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2)
            if stop.is_set():
                return
        log.info("relay publishing (batch %d)", relay.batch)
        wake = asyncio.Event()

        def notified(*_: object) -> None:
            wake.set()

        await lock_conn.add_listener("lmsd_outbox", notified)

        def holding() -> bool:
            try:
                return not lock_conn.is_closed()
            except asyncpg.InterfaceError:  # the pool took back the dead connection
                return False

        try:
            await _loop(relay, settings, stop, beat, wake, holding=holding)
        finally:
            if holding():
                with contextlib.suppress(*connection.DATABASE_ERRORS):
                    await lock_conn.remove_listener("lmsd_outbox", notified)
                    await lock_conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    if not stop.is_set():
        log.warning("lost the database connection holding the relay lock; taking it again")


async def _loop(
    relay: Relay,
    settings: Settings,
    stop: asyncio.Event,
    beat: process.Heartbeat,
    wake: asyncio.Event,
    holding: Callable[[], bool],
) -> None:
    """Publish while there is work and the lock is held; when idle, sleep until the outbox
    trigger's NOTIFY (or the poll interval, in case a notification was missed); after failures,
    back off."""
    idle_s = settings.events.relay_poll_ms / 1000
    backoff = 0.0
    last_prune = 0.0
    total = 0
    loop = asyncio.get_running_loop()
    while not stop.is_set() and holding():
        try:
            sent, failed = await relay.run_once()
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
            # started before `lmsd install`/`upgrade` migrated the database: wait quietly
            beat.detail = "waiting for the database schema"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            continue
        except connection.DATABASE_ERRORS as exc:
            log.warning("database: %s", exc)
            sent, failed = 0, 1
        total += sent
        beat.detail = f"published {total}" + (f", {failed} failing" if failed else "")
        if failed and not sent:
            backoff = min(max(backoff * 2, 0.1), 5.0)
            log.warning("%d aggregates not published; retrying in %.1fs", failed, backoff)
        else:
            backoff = 0.0
        if loop.time() - last_prune > 60:
            last_prune = loop.time()
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await relay.prune(settings.events.outbox_retention_h)
        if backoff:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
        elif not sent:
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            await asyncio.wait(waiters, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        wake.clear()


if __name__ == "__main__":
    raise SystemExit(process.run("lmsd-relay", main))
