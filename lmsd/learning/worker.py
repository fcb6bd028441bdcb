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
from lmsd.events.streams import EVENTS_STREAM, XAPI_FORWARD, consumers_for
from lmsd.learning.forwarder import forwarder_for
from lmsd.learning.projections import projections
from lmsd.settings import Settings


async def main(settings: Settings, secrets: Secrets, stop: asyncio.Event, beat: service.Heartbeat) -> None:
    found = projections(settings.portal_url)
    # the learning consumers; the media worker runs the media ones
    specs = [spec for spec in consumers_for(bool(settings.events.xapi_lrs_url)) if spec.name in (*found, XAPI_FORWARD.name)]
    pool = await service.pg_pool(settings, secrets, size=sum(spec.concurrency for spec in specs) + 1)
    nc = await service.nats_service(settings, secrets, "lmsd-worker")
    js = nc.jetstream()
    forwarder = forwarder_for(settings)
    if forwarder is not None:
        # configured after install: make sure its durable consumer exists (idempotent)
        await js.add_consumer(EVENTS_STREAM, XAPI_FORWARD.config())
        found[XAPI_FORWARD.name] = forwarder
    runners = [ConsumerRunner(js, pool, spec, found[spec.name]) for spec in specs]
    beat.detail = "consuming: " + ", ".join(spec.name for spec in specs)
    try:
        await asyncio.gather(*(r.run(stop) for r in runners))
    finally:
        if forwarder is not None:
            await forwarder.close()
        with contextlib.suppress(Exception):
            await nc.close()
        await pool.close()


if __name__ == "__main__":
    raise SystemExit(service.run("lmsd-worker", main))
