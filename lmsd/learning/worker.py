"""The xAPI forwarder's process (``python -m lmsd.learning.worker``): runs the ``xapi-forward``
durable consumer, which sends every learning event's statement to the campus's external LRS
(:mod:`lmsd.learning.forwarder`). The runtime starts it only when ``events.xapi_lrs_url`` is set.

The learning projections themselves are kept live by lmsd-projector (Rust, ``rust/projector``);
:mod:`lmsd.learning.projections` is their Python reference, used by replay.
"""

from __future__ import annotations

import asyncio
import contextlib

from lmsd.credentials import Secrets
from lmsd.errors import Invalid
from lmsd.events import connection, process
from lmsd.events.consumers import ConsumerRunner
from lmsd.events.streams import EVENTS_STREAM, XAPI_FORWARD
from lmsd.learning.forwarder import forwarder_for
from lmsd.settings import Settings


async def main(settings: Settings, secrets: Secrets, stop: asyncio.Event, beat: process.Heartbeat) -> None:
    forwarder = forwarder_for(settings)
    if forwarder is None:
        raise Invalid("events.xapi_lrs_url is not set: there is nothing to forward")
    pool = await connection.pg_pool(settings, secrets, size=XAPI_FORWARD.concurrency + 1)
    nc = await connection.nats_service(settings, secrets, "lmsd-xapi-forwarder")
    js = nc.jetstream()
    try:
        # configured after install: make sure its durable consumer exists (idempotent)
        await js.add_consumer(EVENTS_STREAM, XAPI_FORWARD.config())
        beat.detail = f"forwarding to {settings.events.xapi_lrs_url}"
        await ConsumerRunner(js, pool, XAPI_FORWARD, forwarder).run(stop)
    finally:
        await forwarder.close()
        with contextlib.suppress(Exception):
            await nc.close()
        await pool.close()


if __name__ == "__main__":
    raise SystemExit(process.run("lmsd-xapi-forwarder", main))
