"""The consumer worker: runs every projection's durable consumer (``python -m lmsd.learning.worker``).

Supervised by the runtime like the API workers; several may run (JetStream spreads a durable
pull consumer's messages over them, and the applied-ids table keeps each effect single).
"""

from __future__ import annotations

import asyncio
import contextlib

from lmsd.credentials import Secrets
from lmsd.events import service
from lmsd.events.consumers import ConsumerRunner
from lmsd.events.streams import CONSUMERS
from lmsd.learning.projections import projections
from lmsd.settings import Settings


async def main(settings: Settings, secrets: Secrets, stop: asyncio.Event, beat: service.Heartbeat) -> None:
    pool = await service.pg_pool(settings, secrets, size=len(CONSUMERS) + 1)
    nc = await service.nats_service(settings, secrets, "lmsd-worker")
    js = nc.jetstream()
    found = projections(settings.portal_url)
    runners = [ConsumerRunner(js, pool, spec, found[spec.name]) for spec in CONSUMERS]
    beat.detail = "consuming: " + ", ".join(spec.name for spec in CONSUMERS)
    try:
        await asyncio.gather(*(r.run(stop) for r in runners))
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
        await pool.close()


if __name__ == "__main__":
    raise SystemExit(service.run("lmsd-worker", main))
