"""Stream definitions, created or updated idempotently by ``lmsd install`` and ``lmsd upgrade``
(the bus's equivalent of migrations).

Subjects follow ``lmsd.<campus>.<aggregate>.<id>.<event>``; dead letters go to
``lmsd-dlq.<consumer>.<original subject>``. Durable consumers are declared here too (``CONSUMERS``)
so that install and upgrade create them before any worker runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

EVENTS_STREAM = "LMSD_EVENTS"
DLQ_STREAM = "LMSD_DLQ"
LEARNING_SUBJECTS = ("lmsd.*.enrolment.>",)


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    duplicate_window_s: float = 120.0

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            description=self.description,
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window_s,
            allow_direct=True,
        )


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(
        name=EVENTS_STREAM,
        subjects=("lmsd.>",),
        description="Every domain event of the campus; the record of learning activity.",
    ),
    StreamSpec(
        name=DLQ_STREAM,
        subjects=("lmsd-dlq.>",),
        description="Messages a consumer gave up on, kept for inspection and replay.",
    ),
)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer of LMSD_EVENTS; a worker binds to it by name."""

    name: str
    filter_subjects: tuple[str, ...]
    description: str
    max_attempts: int = 5  # deliveries before a message goes to the dead-letter stream
    ack_wait_s: float = 10.0
    batch: int = 500
    redeliver_forever: bool = False  # for an external sink: an outage must not exhaust deliveries

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            description=self.description,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            # the worker dead-letters at max_attempts
            max_deliver=-1 if self.redeliver_forever else self.max_attempts + 1,
            max_ack_pending=4 * self.batch,
            filter_subjects=list(self.filter_subjects),
        )


CONSUMERS: tuple[ConsumerSpec, ...] = (
    # One consumer applies all learning projections in one transaction per batch: each event is
    # fetched, decoded, claimed and acknowledged once, and the read models never disagree.
    ConsumerSpec("learning", LEARNING_SUBJECTS, "Learning projections: progress, gradebook, xAPI statements."),
)


# Created when the campus forwards xAPI statements to an external LRS (events.xapi_lrs_url).
XAPI_FORWARD = ConsumerSpec(
    "xapi-forward", LEARNING_SUBJECTS, "Forwards xAPI statements to the configured external LRS.", batch=200,
    ack_wait_s=30.0, redeliver_forever=True,
)


def consumers_for(lrs_enabled: bool) -> tuple[ConsumerSpec, ...]:
    return (*CONSUMERS, XAPI_FORWARD) if lrs_enabled else CONSUMERS


def consumer_spec(name: str) -> ConsumerSpec:
    for spec in (*CONSUMERS, XAPI_FORWARD):
        if spec.name == name:
            return spec
    raise KeyError(name)


async def ensure_streams(nc: NATS, lrs_enabled: bool = False) -> list[tuple[str, str]]:
    """Create missing streams and consumers and update changed ones. Returns (name, action) pairs."""
    js = nc.jetstream()
    actions: list[tuple[str, str]] = []
    for spec in STREAMS:
        wanted = spec.config()
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(wanted)
            actions.append((spec.name, "created"))
            continue
        current = info.config
        if (
            sorted(current.subjects or []) != sorted(wanted.subjects or [])
            or current.description != wanted.description
            or current.duplicate_window != wanted.duplicate_window
        ):
            await js.update_stream(wanted)
            actions.append((spec.name, "updated"))
        else:
            actions.append((spec.name, "unchanged"))
    for consumer in consumers_for(lrs_enabled):
        wanted_c = consumer.config()
        try:
            current_c = (await js.consumer_info(EVENTS_STREAM, consumer.name)).config
        except NotFoundError:
            await js.add_consumer(EVENTS_STREAM, wanted_c)
            actions.append((f"consumer {consumer.name}", "created"))
            continue
        if (
            sorted(current_c.filter_subjects or [current_c.filter_subject or ""]) != sorted(consumer.filter_subjects)
            or current_c.max_deliver != wanted_c.max_deliver
            or current_c.ack_wait != wanted_c.ack_wait
            or current_c.description != wanted_c.description
        ):
            await js.add_consumer(EVENTS_STREAM, wanted_c)  # same durable name: an update
            actions.append((f"consumer {consumer.name}", "updated"))
        else:
            actions.append((f"consumer {consumer.name}", "unchanged"))
    return actions
