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
    StreamSource,
    SubjectTransform,
)
from nats.js.errors import NotFoundError

EVENTS_STREAM = "LMSD_EVENTS"
DLQ_STREAM = "LMSD_DLQ"
JOBS_STREAM = "LMSD_JOBS"
LEARNING_SUBJECTS = ("lmsd.*.enrolment.>",)
# Work for the media workers, copied from LMSD_EVENTS into a work-queue stream (docs/video.md).
TRANSCODE_JOBS = ("lmsd.*.video.*.video_uploaded",)
TRANSCRIBE_JOBS = ("lmsd.*.transcode.*.video_transcoded", "lmsd.*.video.*.transcription_requested")
TRANSCODER_REPORTS = ("lmsd.*.transcode.>",)
JOB_CONSUMERS = ("transcode", "transcribe")  # dead letters of these are re-queued, not re-applied


def _keep(pattern: str) -> SubjectTransform:
    """A source transform that keeps matching subjects as they are."""
    parts = pattern.split(".")
    dest, n = [], 0
    for part in parts:
        if part == "*":
            n += 1
            dest.append(f"{{{{wildcard({n})}}}}")
        else:
            dest.append(part)
    return SubjectTransform(src=pattern, dest=".".join(dest))


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    duplicate_window_s: float = 120.0
    sourced: tuple[str, ...] = ()  # subjects copied from LMSD_EVENTS (a stream without subjects)
    allow_atomic: bool = False  # atomic batch publishes (the relay's runs of one aggregate)

    def config(self) -> StreamConfig:
        sources = None
        if self.sourced:
            sources = [StreamSource(name=EVENTS_STREAM, subject_transforms=[_keep(p) for p in self.sourced])]
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects) or None,
            sources=sources,
            description=self.description,
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window_s,
            allow_direct=True,
            allow_atomic=self.allow_atomic or None,
        )


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(
        name=EVENTS_STREAM,
        subjects=("lmsd.>",),
        description="Every domain event of the campus; the record of learning activity.",
        allow_atomic=True,
    ),
    StreamSpec(
        name=DLQ_STREAM,
        subjects=("lmsd-dlq.>",),
        description="Messages a consumer gave up on, kept for inspection and replay.",
    ),
    StreamSpec(
        name=JOBS_STREAM,
        subjects=(),
        description="Media jobs (transcode, transcribe): a work queue fed from LMSD_EVENTS.",
        retention=RetentionPolicy.WORK_QUEUE,
        sourced=(*TRANSCODE_JOBS, *TRANSCRIBE_JOBS),
    ),
)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer (of LMSD_EVENTS unless ``stream`` says otherwise); a worker binds
    to it by name."""

    name: str
    filter_subjects: tuple[str, ...]
    description: str
    stream: str = EVENTS_STREAM
    max_attempts: int = 5  # deliveries before a message goes to the dead-letter stream
    ack_wait_s: float = 10.0
    batch: int = 500
    redeliver_forever: bool = False  # for an external sink: an outage must not exhaust deliveries
    max_ack_pending: int = 0  # messages out at once over every worker of the consumer; 0: 2 rounds of pulls + 2
    concurrency: int = 1  # batches a worker fetches and applies at once (lmsd.events.consumers)

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            description=self.description,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            # the worker dead-letters at max_attempts
            max_deliver=-1 if self.redeliver_forever else self.max_attempts + 1,
            max_ack_pending=self.max_ack_pending or (2 * self.concurrency + 2) * self.batch,
            filter_subjects=list(self.filter_subjects),
        )


CONSUMERS: tuple[ConsumerSpec, ...] = (
    # One consumer applies all learning projections in one transaction per batch: each event is
    # fetched, decoded, claimed and acknowledged once, and the read models never disagree.
    # Three batches at once: while one waits on the database, another decodes or fetches.
    ConsumerSpec(
        "learning", LEARNING_SUBJECTS, "Learning projections: progress, gradebook, xAPI statements.", concurrency=3,
    ),
    ConsumerSpec("media", TRANSCODER_REPORTS, "Video state from the transcoder's reports.", batch=100),
    # lmsd-transcoder (Rust) counts attempts itself (media.transcode_attempts) and keeps each job
    # alive with in-progress acks while ffmpeg runs.
    ConsumerSpec(
        "transcode", TRANSCODE_JOBS, "Transcode uploaded videos into the HLS ladder.", stream=JOBS_STREAM,
        ack_wait_s=30.0, batch=1, redeliver_forever=True, max_ack_pending=256,  # ≥ transcoders × jobs
    ),
    ConsumerSpec(
        "transcribe", TRANSCRIBE_JOBS, "Transcribe transcoded videos into WebVTT subtitles.", stream=JOBS_STREAM,
        ack_wait_s=60.0, batch=1, max_attempts=3,
    ),
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
            or [t.src for s in current.sources or [] for t in s.subject_transforms or []] != list(spec.sourced)
            or current.description != wanted.description
            or current.duplicate_window != wanted.duplicate_window
            or bool(current.allow_atomic) != spec.allow_atomic
        ):
            await js.update_stream(wanted)
            actions.append((spec.name, "updated"))
        else:
            actions.append((spec.name, "unchanged"))
    for consumer in consumers_for(lrs_enabled):
        wanted_c = consumer.config()
        try:
            current_c = (await js.consumer_info(consumer.stream, consumer.name)).config
        except NotFoundError:
            await js.add_consumer(consumer.stream, wanted_c)
            actions.append((f"consumer {consumer.name}", "created"))
            continue
        if (
            sorted(current_c.filter_subjects or [current_c.filter_subject or ""]) != sorted(consumer.filter_subjects)
            or current_c.max_deliver != wanted_c.max_deliver
            or current_c.ack_wait != wanted_c.ack_wait
            or current_c.max_ack_pending != wanted_c.max_ack_pending
            or current_c.description != wanted_c.description
        ):
            await js.add_consumer(consumer.stream, wanted_c)  # same durable name: an update
            actions.append((f"consumer {consumer.name}", "updated"))
        else:
            actions.append((f"consumer {consumer.name}", "unchanged"))
    return actions
