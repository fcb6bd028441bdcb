"""Stream definitions, created or updated idempotently by ``lmsd install`` and ``lmsd upgrade``
(the bus's equivalent of migrations).

Subjects follow ``lmsd.<campus>.<aggregate>.<id>.<event>``; dead letters go to
``lmsd-dlq.<consumer>.<original subject>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError


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
        name="LMSD_EVENTS",
        subjects=("lmsd.>",),
        description="Every domain event of the campus; the record of learning activity.",
    ),
    StreamSpec(
        name="LMSD_DLQ",
        subjects=("lmsd-dlq.>",),
        description="Messages a consumer gave up on, kept for inspection and replay.",
    ),
)


async def ensure_streams(nc: NATS) -> list[tuple[str, str]]:
    """Create missing streams and update changed ones. Returns (stream, action) pairs."""
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
    return actions
