"""Events on the bus: the subject scheme and the protobuf envelope (lmsd.contracts.v1.Event).

Subject: ``lmsd.<campus_id>.<aggregate>.<aggregate_id>.<event>``, where ``<event>`` is the name of
the envelope's ``body`` field (``lesson_completed``…). docs/events.md lists every one.
"""

from __future__ import annotations

import functools
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message

from lmsd.contracts.v1 import envelope_pb2

Event = envelope_pb2.Event
BODIES: tuple[str, ...] = tuple(f.name for f in Event.DESCRIPTOR.oneofs_by_name["body"].fields)
AGGREGATE_OF: dict[str, str] = {
    **{b: "enrolment" for b in (
        "lesson_started", "lesson_completed", "video_watched", "quiz_attempt_submitted",
        "quiz_attempt_graded", "course_completed", "enrolment_created", "enrolment_withdrawn",
    )},
    "course_published": "course",
    "course_updated": "course",
    **{b: "video" for b in ("video_uploaded", "transcript_published", "transcription_requested")},
    **{b: "transcode" for b in ("video_transcoded", "transcode_progress", "transcode_failed")},
}
assert set(AGGREGATE_OF) == set(BODIES), "every event body needs its aggregate"


@functools.lru_cache(maxsize=8192)
def text(value: uuid.UUID) -> str:
    """``str(value)``, remembered: a batch of events names the same campus, aggregates, actors,
    courses and lessons again and again, and ``UUID.__str__`` is Python code."""
    return str(value)


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) event ids from one read of the system's random source:
    ``uuid.uuid4()`` makes a system call per id, a tenth of the API's time on a batch of
    learning events."""
    raw = os.urandom(16 * count)
    return [uuid.UUID(bytes=raw[i : i + 16], version=4) for i in range(0, len(raw), 16)]


def subject(campus_id: uuid.UUID | str, aggregate: str, aggregate_id: uuid.UUID | str, body: str) -> str:
    return f"lmsd.{campus_id}.{aggregate}.{aggregate_id}.{body}"


def aggregate_filter(campus_id: uuid.UUID | str, aggregate: str, aggregate_id: uuid.UUID | str) -> str:
    """Every subject of one aggregate instance (for Nats-Expected-Last-Subject-Sequence-Subject)."""
    return f"lmsd.{campus_id}.{aggregate}.{aggregate_id}.*"


def micros(moment: datetime | None) -> int:
    if moment is None:
        return time.time_ns() // 1000
    return int(moment.timestamp() * 1_000_000)


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


@dataclass
class NewEvent:
    """An event a service wants recorded; the outbox gives it its version and id."""

    campus_id: uuid.UUID
    aggregate_id: uuid.UUID
    body: str
    message: Message
    actor_id: uuid.UUID | None = None
    occurred_at: datetime | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def aggregate(self) -> str:
        return AGGREGATE_OF[self.body]

    @property
    def subject(self) -> str:
        return subject(text(self.campus_id), self.aggregate, text(self.aggregate_id), self.body)

    def envelope(self, version: int, recorded_at_us: int) -> Event:
        event = Event(
            id=str(self.event_id),
            campus_id=text(self.campus_id),
            aggregate=self.aggregate,
            aggregate_id=text(self.aggregate_id),
            version=version,
            occurred_at_us=micros(self.occurred_at) if self.occurred_at else recorded_at_us,
            recorded_at_us=recorded_at_us,
            actor_id=text(self.actor_id) if self.actor_id else "",
        )
        getattr(event, self.body).CopyFrom(self.message)
        return event


class Undecodable(Exception):
    """A message that is not a valid lmsd event (goes to the dead-letter stream)."""


def decode(data: bytes) -> Event:
    event = Event()
    try:
        event.ParseFromString(data)
    except DecodeError as exc:
        raise Undecodable(f"not a protobuf lmsd.contracts.v1.Event: {exc}") from None
    if not event.id or event.WhichOneof("body") is None:
        raise Undecodable("event without id or body")
    if not all(_is_uuid(value) for value in (event.id, event.campus_id, event.aggregate_id)):
        raise Undecodable("event ids are not UUIDs")
    return event


_HYPHENATED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_uuid(value: str) -> bool:
    """What ``uuid.UUID`` accepts; the usual hyphenated form by a faster test."""
    if _HYPHENATED.fullmatch(value):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
