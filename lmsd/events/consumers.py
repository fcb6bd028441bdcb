"""Idempotent consumers: a projection applies a batch of events and records, in the same
database transaction, which event ids it applied — so a redelivered event changes nothing.

A message that cannot be decoded goes to the dead-letter stream at once, with its reason; one
whose application keeps failing goes there after ``max_attempts`` deliveries. Neither blocks
the consumer. The media worker and the xAPI forwarder run their consumers with this module; the
learning projections are kept live by lmsd-projector (Rust), which follows the same rules, and
``lmsd events replay`` / ``dlq replay`` apply them here with :func:`apply_batch`.

A consumer may apply several batches at once (``ConsumerSpec.concurrency`` pulls per worker, and
several workers): each batch's transaction first takes a lock per aggregate it touches
(``pg_advisory_xact_lock``, in key order, so batches never deadlock on each other), so two
batches of one enrolment apply one after the other and a projection's read-modify-write of its
rows is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import asyncpg
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ServiceUnavailableError

from lmsd.events import connection, outbox
from lmsd.events.envelope import Event, NewEvent, Undecodable, decode
from lmsd.events.streams import ConsumerSpec

log = logging.getLogger("lmsd.events.consumers")


class ApplyFailed(Exception):
    """This event cannot be applied (retried, then dead-lettered)."""


class Unavailable(Exception):
    """Something the projection needs is away (an external LRS): retry later, never dead-letter."""


POISON = (asyncpg.PostgresError, ValueError, KeyError, ApplyFailed)


@dataclass(frozen=True)
class Delivered:
    event: Event
    stream_seq: int
    data: bytes = b""  # the message as delivered (the event encoded), when at hand


def stream_seq(msg: Msg) -> int:
    """A delivered message's stream sequence, read from its ack subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``)
    without building nats-py's whole metadata (times and all) for every message."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[5])
    return int(msg.metadata.sequence.stream)  # the longer form (domain, account hash)


class Projection(Protocol):
    """A read model built from events. ``apply`` must give the same tables whatever the order
    and grouping of the events (replay relies on it) and must not read the clock."""

    name: str
    tables: tuple[str, ...]

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        """Apply ``events`` (each new to this projection). Live runs may return follow-up events,
        recorded in the same transaction; replays pass ``live=False`` and must not emit."""
        ...


_CLAIM = """
INSERT INTO consumer_applied (campus_id, consumer, event_id, stream_seq)
SELECT c, $1, e, s FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS u(c, e, s)
ON CONFLICT DO NOTHING
RETURNING event_id
"""
_PROGRESS = """
INSERT INTO event_consumers AS c (name, applied, last_stream_seq, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET applied = c.applied + excluded.applied,
  last_stream_seq = greatest(c.last_stream_seq, excluded.last_stream_seq), updated_at = excluded.updated_at
"""


_LOCK = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k"


def lock_keys(consumer: str, aggregate_ids: set[str]) -> list[int]:
    """Advisory lock keys (signed 64-bit, sorted) for a consumer's aggregates."""
    salt = zlib.crc32(consumer.encode()) << 31
    return sorted(((uuid.UUID(a).int >> 64) ^ salt) - (1 << 63) for a in aggregate_ids)


async def apply_batch(conn: asyncpg.Connection, projection: Projection, batch: list[Delivered]) -> int:
    """One transaction per campus of the batch (lock its aggregates, claim the event ids, apply
    the new ones, record follow-ups), then the consumer's count. Returns how many were new.

    On Citus a campus's transaction writes its shard group only; the count (a reference table)
    is its own statement, since in the batch's transaction it would make every commit span every
    node. The count is informational (``lmsd events status``): a crash between a commit and the
    count leaves it short by that batch, nothing else. lmsd-projector, which applies the live
    learning projections concurrently, also waits for rows of a batch left prepared on a worker
    (rust/projector/src/store/sql.rs); the projections here run live for media only, one batch
    at a time, and in replay."""
    by_campus: dict[str, list[Delivered]] = {}
    for d in batch:
        by_campus.setdefault(d.event.campus_id, []).append(d)
    applied = 0
    for group in by_campus.values():
        applied += await _apply_campus(conn, projection, group)
    await conn.execute(_PROGRESS, projection.name, applied, max(d.stream_seq for d in batch))
    return applied


async def _apply_campus(conn: asyncpg.Connection, projection: Projection, batch: list[Delivered]) -> int:
    ids = [d.event.id for d in batch]  # asyncpg encodes uuid parameters from their text
    async with conn.transaction():
        await conn.execute(_LOCK, lock_keys(projection.name, {d.event.aggregate_id for d in batch}))
        claimed = {
            str(r["event_id"])
            for r in await conn.fetch(
                _CLAIM, projection.name, [d.event.campus_id for d in batch], ids, [d.stream_seq for d in batch]
            )
        }
        fresh = [d for d, i in zip(batch, ids, strict=True) if i in claimed]
        if fresh:
            follow_ups = await projection.apply(conn, fresh, live=True)
            await outbox.append(conn, follow_ups)
    return len(fresh)


async def dead_letter(js: JetStreamContext, consumer: str, msg: Msg, reason: str) -> None:
    meta = msg.metadata
    headers = {
        "Nats-Msg-Id": f"{consumer}:{meta.sequence.stream}",
        "Lmsd-Dlq-Consumer": consumer,
        "Lmsd-Dlq-Reason": reason[:500].replace("\r", " ").replace("\n", " "),
        "Lmsd-Dlq-Subject": msg.subject,
        "Lmsd-Dlq-Stream-Seq": str(meta.sequence.stream),
        "Lmsd-Dlq-Deliveries": str(meta.num_delivered),
    }
    await js.publish(f"lmsd-dlq.{consumer}.{msg.subject}", msg.data, headers=headers)
    log.warning("dead-lettered %s seq %s for %s: %s", msg.subject, meta.sequence.stream, consumer, reason)


class ConsumerRunner:
    def __init__(self, js: JetStreamContext, pool: asyncpg.Pool, spec: ConsumerSpec, projection: Projection) -> None:
        self.js = js
        self.pool = pool
        self.spec = spec
        self.projection = projection

    async def run(self, stop: asyncio.Event) -> None:
        """``spec.concurrency`` pulls on the durable consumer, each fetching and applying its own
        batches (JetStream hands each message to one of them)."""
        await asyncio.gather(*(self._pull(stop) for _ in range(self.spec.concurrency)))

    async def _pull(self, stop: asyncio.Event) -> None:
        sub = await self.js.pull_subscribe_bind(durable=self.spec.name, stream=self.spec.stream)
        while not stop.is_set():
            try:
                msgs = await sub.fetch(self.spec.batch, timeout=1.0)
            except TimeoutError:
                continue
            except NatsError as exc:
                if isinstance(exc, NotFoundError | ServiceUnavailableError):
                    # streams not created yet (started before `lmsd install` made them): wait quietly
                    log.debug("%s: waiting for the stream and consumer: %s", self.spec.name, exc)
                else:
                    log.warning("%s: fetch failed: %s", self.spec.name, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                continue
            try:
                await self.handle(msgs, stop)
            except (*connection.DATABASE_ERRORS, Unavailable) as exc:
                # an external service is away (the batch was handed back), or the database failed
                # outside a held step (dead-lettering): the batch comes back after ack_wait
                log.warning("%s: unavailable, retrying: %s", self.spec.name, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2)

    async def handle(self, msgs: list[Msg], stop: asyncio.Event | None = None) -> None:
        good: list[tuple[Delivered, Msg]] = []
        for msg in msgs:
            try:
                good.append((Delivered(decode(msg.data), stream_seq(msg), msg.data), msg))
            except Undecodable as exc:
                await dead_letter(self.js, self.spec.name, msg, str(exc))
                await msg.ack()
        if not good:
            return
        try:
            await self._apply_held(good, stop)
        except Unavailable:
            for _, msg in good:  # back soon, not after ack_wait
                await msg.nak(delay=2.0)
            raise
        except POISON as exc:
            log.warning("%s: batch failed (%s); applying one by one", self.spec.name, exc)
            await self._one_by_one(good, stop)
            return
        except Stopping:
            return  # the batch comes back to whoever consumes next
        for _, msg in good:
            await msg.ack()

    async def _apply_held(self, good: list[tuple[Delivered, Msg]], stop: asyncio.Event | None) -> None:
        async def apply() -> None:
            async with self.pool.acquire() as conn:
                await apply_batch(conn, self.projection, [d for d, _ in good])

        await held([msg for _, msg in good], apply, stop, self.spec.name)

    async def _one_by_one(self, good: list[tuple[Delivered, Msg]], stop: asyncio.Event | None) -> None:
        for delivered, msg in good:
            try:
                await self._apply_held([(delivered, msg)], stop)
            except Stopping:
                return
            except POISON as exc:
                if msg.metadata.num_delivered >= self.spec.max_attempts:
                    await dead_letter(self.js, self.spec.name, msg, f"{type(exc).__name__}: {exc}")
                    await msg.ack()
                else:
                    await msg.nak(delay=min(2.0 ** msg.metadata.num_delivered, 30.0))
                continue
            await msg.ack()


class Stopping(Exception):
    """The worker stops while it holds messages for the database."""


KEEP_ALIVE_S = 3.0  # well within the consumers' ack wait (10 s and more)
T = TypeVar("T")


async def held(msgs: list[Msg], work: Callable[[], Awaitable[T]], stop: asyncio.Event | None, what: str) -> T:
    """Run ``work`` for ``msgs``, holding on to them while the database is away or slow: they
    are said to be in progress every few seconds, which restarts JetStream's ack wait without
    counting a delivery, and ``work`` runs again once the database answers. (Handing them back
    instead would spend the consumer's deliveries on an outage: past ``max_deliver``,
    JetStream stops delivering a message.) Raises :class:`Stopping` when ``stop`` is set
    meanwhile, and whatever ``work`` raises that is not the database being away."""
    while True:
        try:
            async with kept_in_progress(msgs):
                return await work()
        except Exception as exc:
            if not connection.database_away(exc):
                raise
            log.warning("%s: database unavailable (%s); holding %d message(s)", what, exc, len(msgs))
        if stop is not None and stop.is_set():
            raise Stopping
        await _in_progress(msgs)
        if stop is None:
            await asyncio.sleep(1.0)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _in_progress(msgs: list[Msg]) -> None:
    for msg in msgs:
        with contextlib.suppress(NatsError):
            await msg.in_progress()


@contextlib.asynccontextmanager
async def kept_in_progress(msgs: list[Msg], every_s: float = KEEP_ALIVE_S) -> AsyncIterator[None]:
    """While the body runs (a slow database, a slow LRS, a long recognition), ``msgs`` are said
    to be in progress every ``every_s`` seconds, so their ack wait does not run out."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)
            await _in_progress(msgs)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
