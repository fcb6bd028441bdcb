"""Operator views of the event backbone: backlog and consumer lag, the dead-letter stream,
and replaying a projection from the stream (``lmsd events …``, part of ``lmsd status``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from lmsd.credentials import Secrets
from lmsd.errors import Invalid, NotFound, OperationFailed
from lmsd.events import connection, relay
from lmsd.events.consumers import Delivered, Projection, apply_batch, stream_seq
from lmsd.events.envelope import Undecodable, decode
from lmsd.events.streams import DLQ_STREAM, EVENTS_STREAM, JOB_CONSUMERS, LEARNING_SUBJECTS, consumers_for
from lmsd.learning.forwarder import forwarder_for
from lmsd.learning.projections import CONSUMER_OF, projections
from lmsd.media.projection import MediaProjection
from lmsd.settings import Settings

REPLAY_SCHEMA = "lmsd_replay"
SNAPSHOT_SCHEMA = "lmsd_snapshots"


@contextlib.asynccontextmanager
async def connections(settings: Settings, secrets: Secrets) -> AsyncIterator[tuple[asyncpg.Connection, NATS]]:
    try:
        conn = await connection.pg_connect(settings, secrets)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OperationFailed(f"cannot reach PostgreSQL (is lmsd running? `lmsd up`): {exc}") from None
    try:
        try:
            nc = await connection.nats_connect(settings, secrets)
        except (OSError, NatsError, TimeoutError) as exc:
            raise OperationFailed(f"cannot reach NATS (is lmsd running? `lmsd up`): {exc}") from None
        try:
            yield conn, nc
        finally:
            await nc.close()
    finally:
        await conn.close()


async def summary(settings: Settings, secrets: Secrets) -> dict[str, Any]:
    """Relay backlog and lag, each consumer's pending and applied counts, dead letters."""
    async with connections(settings, secrets) as (conn, nc):
        js = nc.jetstream()
        out: dict[str, Any] = {"relay": await relay.backlog(conn)}
        applied = {r["name"]: r for r in await conn.fetch("SELECT * FROM event_consumers")}
        consumers = []
        for spec in consumers_for(bool(settings.events.xapi_lrs_url)):
            try:
                info = await js.consumer_info(spec.stream, spec.name)
                pending, unacked, redelivered = info.num_pending or 0, info.num_ack_pending or 0, info.num_redelivered or 0
            except NotFoundError:
                pending = unacked = redelivered = -1
            row = applied.get(spec.name)
            consumers.append({
                "name": spec.name,
                "pending": pending,
                "unacknowledged": unacked,
                "redelivered": redelivered,
                "applied": int(row["applied"]) if row else 0,
                "last_stream_seq": int(row["last_stream_seq"]) if row else 0,
            })
        out["consumers"] = consumers
        stream = await js.stream_info(EVENTS_STREAM)
        dlq = await js.stream_info(DLQ_STREAM)
        out["stream"] = {"messages": stream.state.messages, "last_seq": stream.state.last_seq}
        out["dead_letters"] = dlq.state.messages
        return out


# -- dead letters ---------------------------------------------------------------------------------
@dataclass
class DeadLetter:
    seq: int
    consumer: str
    subject: str
    reason: str
    deliveries: int
    stream_seq: int
    time: datetime | None
    data: bytes = field(repr=False, default=b"")

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "consumer": self.consumer, "subject": self.subject, "reason": self.reason,
            "deliveries": self.deliveries, "stream_seq": self.stream_seq,
            "time": self.time.isoformat() if self.time else None,
        }


async def _dead_letters(nc: NATS, seqs: list[int] | None = None) -> list[DeadLetter]:
    js = nc.jetstream()
    state = (await js.stream_info(DLQ_STREAM)).state
    wanted = seqs if seqs is not None else list(range(state.first_seq, state.last_seq + 1)) if state.messages else []
    letters = []
    for seq in wanted:
        try:
            msg = await js.get_msg(DLQ_STREAM, seq)
        except NotFoundError:
            if seqs is not None:
                raise NotFound(f"no dead letter with sequence {seq}") from None
            continue
        h = msg.headers or {}
        letters.append(
            DeadLetter(
                seq=seq,
                consumer=h.get("Lmsd-Dlq-Consumer", ""),
                subject=h.get("Lmsd-Dlq-Subject", msg.subject or ""),
                reason=h.get("Lmsd-Dlq-Reason", ""),
                deliveries=int(h.get("Lmsd-Dlq-Deliveries", "0") or 0),
                stream_seq=int(h.get("Lmsd-Dlq-Stream-Seq", "0") or 0),
                time=getattr(msg, "time", None),
                data=msg.data or b"",
            )
        )
    return letters


async def dead_letters(settings: Settings, secrets: Secrets) -> list[DeadLetter]:
    async with connections(settings, secrets) as (_, nc):
        return await _dead_letters(nc)


async def replay_dead_letters(settings: Settings, secrets: Secrets, seqs: list[int] | None) -> list[tuple[int, str]]:
    """Apply dead letters again through their consumer's projection (idempotent); the ones that
    now apply leave the dead-letter stream. Returns (seq, outcome) pairs."""
    found = projections(settings.portal_url)
    found[MediaProjection.name] = MediaProjection()
    forwarder = forwarder_for(settings)
    if forwarder is not None:
        found[forwarder.name] = forwarder
    results = []
    async with connections(settings, secrets) as (conn, nc):
        js = nc.jetstream()
        for letter in await _dead_letters(nc, seqs):
            if letter.consumer in JOB_CONSUMERS:
                # a job runs again: its event is published anew and the work queue takes it
                await js.publish(letter.subject, letter.data, headers={"Nats-Msg-Id": f"retry-{letter.seq}-{letter.subject}"})
                await js.delete_msg(DLQ_STREAM, letter.seq)
                results.append((letter.seq, "queued again"))
                continue
            projection = found.get(letter.consumer)
            if projection is None:
                results.append((letter.seq, f"kept: unknown consumer {letter.consumer!r}"))
                continue
            try:
                event = decode(letter.data)
                await apply_batch(conn, projection, [Delivered(event, letter.stream_seq, letter.data)])
            except Undecodable as exc:
                results.append((letter.seq, f"kept: {exc} (remove it with `lmsd events dlq drop {letter.seq}`)"))
                continue
            except (asyncpg.PostgresError, ValueError, KeyError) as exc:
                results.append((letter.seq, f"kept: still fails: {type(exc).__name__}: {exc}"))
                continue
            await js.delete_msg(DLQ_STREAM, letter.seq)
            results.append((letter.seq, "applied"))
    return results


async def drop_dead_letter(settings: Settings, secrets: Secrets, seq: int) -> None:
    async with connections(settings, secrets) as (_, nc):
        await _dead_letters(nc, [seq])  # NotFound when it is not there
        await nc.jetstream().delete_msg(DLQ_STREAM, seq)


# -- replay ---------------------------------------------------------------------------------------
@dataclass
class ReplayReport:
    projection: str
    from_seq: int
    to_seq: int
    events: int
    snapshot_seq: int | None
    seconds: float
    rows: dict[str, int]
    differences: dict[str, int]
    live_seq: int
    live_pending: int

    @property
    def comparable(self) -> bool:
        """The live projection has seen exactly the stream the replay read."""
        return self.live_pending == 0 and self.live_seq <= self.to_seq

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "comparable": self.comparable}


def projection_named(settings: Settings, name: str) -> Projection:
    found = projections(settings.portal_url)
    if name not in found:
        raise Invalid(f"no projection {name!r}; projections: {', '.join(sorted(found))}")
    return found[name]


async def replay(
    settings: Settings, secrets: Secrets, name: str, *, from_start: bool = False, batch: int = 1000
) -> ReplayReport:
    """Rebuild projection ``name`` from the stream into fresh tables (schema lmsd_replay), starting
    from its latest snapshot unless ``from_start``; then snapshot the result and compare it with
    the live tables."""
    projection = projection_named(settings, name)
    started = time.perf_counter()
    async with connections(settings, secrets) as (conn, nc):
        js = nc.jetstream()
        end = (await js.stream_info(EVENTS_STREAM)).state.last_seq
        snap = None if from_start else await conn.fetchrow(
            "SELECT stream_seq FROM projection_snapshots WHERE projection = $1", name
        )
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {REPLAY_SCHEMA}; CREATE SCHEMA IF NOT EXISTS {SNAPSHOT_SCHEMA}")
        for table in projection.tables:
            await conn.execute(
                f"DROP TABLE IF EXISTS {REPLAY_SCHEMA}.{table};"
                f"CREATE TABLE {REPLAY_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
            )
            if snap is not None:
                await conn.execute(f"INSERT INTO {REPLAY_SCHEMA}.{table} SELECT * FROM {SNAPSHOT_SCHEMA}.{name}__{table}")
        start = int(snap["stream_seq"]) + 1 if snap is not None else 1
        events = await _apply_range(conn, nc, projection, start, end, batch) if start <= end else 0
        async with conn.transaction():
            for table in projection.tables:
                await conn.execute(
                    f"DROP TABLE IF EXISTS {SNAPSHOT_SCHEMA}.{name}__{table};"
                    f"CREATE TABLE {SNAPSHOT_SCHEMA}.{name}__{table} AS SELECT * FROM {REPLAY_SCHEMA}.{table}"
                )
            await conn.execute(
                "INSERT INTO projection_snapshots (projection, stream_seq, events, taken_at) VALUES ($1, $2, $3, now()) "
                "ON CONFLICT (projection) DO UPDATE SET stream_seq = excluded.stream_seq, "
                "events = projection_snapshots.events + excluded.events, taken_at = excluded.taken_at",
                name, end, events,
            )
        rows, differences = {}, {}
        for table in projection.tables:
            rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {REPLAY_SCHEMA}.{table}"))
            differences[table] = int(
                await conn.fetchval(
                    f"SELECT (SELECT count(*) FROM (SELECT * FROM public.{table} EXCEPT ALL "
                    f"SELECT * FROM {REPLAY_SCHEMA}.{table}) a) + (SELECT count(*) FROM (SELECT * FROM "
                    f"{REPLAY_SCHEMA}.{table} EXCEPT ALL SELECT * FROM public.{table}) b)"
                )
            )
        consumer = CONSUMER_OF[name]
        info = await js.consumer_info(EVENTS_STREAM, consumer)
        live_seq = int(await conn.fetchval("SELECT last_stream_seq FROM event_consumers WHERE name = $1", consumer) or 0)
    return ReplayReport(
        projection=name, from_seq=start, to_seq=end, events=events,
        snapshot_seq=int(snap["stream_seq"]) if snap is not None else None,
        seconds=round(time.perf_counter() - started, 3), rows=rows, differences=differences,
        live_seq=live_seq, live_pending=(info.num_pending or 0) + (info.num_ack_pending or 0),
    )


async def _apply_in_replay(conn: asyncpg.Connection, projection: Projection, chunk: list[Delivered]) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL search_path TO {REPLAY_SCHEMA}, public")
        await projection.apply(conn, chunk, live=False)


async def _apply_replayed(conn: asyncpg.Connection, projection: Projection, chunk: list[Delivered]) -> int:
    """Apply a chunk; when it fails, one by one, skipping the events that cannot be applied —
    the ones the live consumer dead-lettered for the same reason."""
    try:
        await _apply_in_replay(conn, projection, chunk)
        return len(chunk)
    except (asyncpg.PostgresError, ValueError, KeyError):
        pass
    applied = 0
    for delivered in chunk:
        try:
            await _apply_in_replay(conn, projection, [delivered])
            applied += 1
        except (asyncpg.PostgresError, ValueError, KeyError):
            continue
    return applied


async def _apply_range(conn: asyncpg.Connection, nc: NATS, projection: Projection, start: int, end: int, batch: int) -> int:
    js = nc.jetstream()
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,
        max_ack_pending=-1,
    )
    sub = await js.pull_subscribe(LEARNING_SUBJECTS[0], durable=None, stream=EVENTS_STREAM, config=config)
    applied = 0
    try:
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=2.0)
            except TimeoutError:
                break  # nothing more in the filter up to now
            chunk = []
            done = False
            for msg in msgs:
                seq = stream_seq(msg)
                if seq > end:
                    done = True
                    break
                with contextlib.suppress(Undecodable):  # undecodable messages are the DLQ's business
                    chunk.append(Delivered(decode(msg.data), seq, msg.data))
            if chunk:
                applied += await _apply_replayed(conn, projection, chunk)
            if done or (msgs and stream_seq(msgs[-1]) >= end):
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return applied

