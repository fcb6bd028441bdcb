"""What a long-running event process needs: settings, a PostgreSQL pool, a NATS connection that
reconnects for ever, and a clean stop on SIGTERM. Used by the relay and the consumer worker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import nats
from nats.aio.client import Client as NATS

import lmsd
from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.errors import LmsdError
from lmsd.runtime import nats as nats_rt
from lmsd.runtime.paths import RunPaths
from lmsd.runtime.postgres import app_dsn
from lmsd.settings import Settings, load_settings

log = logging.getLogger("lmsd.events")

# Everything the database can raise under a running service: refusals, and a database away or
# restarting (asyncpg's InternalClientError included: the connection was lost in the middle of
# an operation). ``database_away`` tells the two apart.
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is away, restarting or not migrated yet (try the same
    work again later) rather than refusing this work: no answer at all, or SQLSTATE class 08
    (connection), 53 (resources), 57 (shutdown), an undefined table or database. lmsd-projector
    sorts its errors the same way (rust/projector/src/consumer.rs ``unavailable``)."""
    if isinstance(exc, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        code = str(getattr(exc, "sqlstate", "") or "")
        return code[:2] in ("08", "53", "57") or code in ("42P01", "3D000")
    return False


async def json_codecs(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python values, as on the API's SQLAlchemy connections."""
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def pg_connect(settings: Settings, secrets: Secrets, timeout: float = 5) -> asyncpg.Connection:
    conn = await asyncpg.connect(app_dsn(settings, secrets), timeout=timeout)
    await json_codecs(conn)
    return conn


async def pg_pool(
    settings: Settings, secrets: Secrets, size: int = 4, server_settings: dict[str, str] | None = None
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        app_dsn(settings, secrets), min_size=1, max_size=size, init=json_codecs, server_settings=server_settings
    )
    assert pool is not None
    return pool


async def nats_service(settings: Settings, secrets: Secrets, name: str) -> NATS:
    """A connection for a supervised service: keeps reconnecting while NATS restarts."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await nats.connect(
        servers=[nats_rt.url(settings)],
        user=nats_rt.NATS_USER,
        password=secrets.nats_password,
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        error_cb=on_error,
    )


class Heartbeat:
    """``run/<name>.heartbeat``: pid, time and a one-line detail, rewritten every second while the
    service's loop runs (the runtime's health probe reads it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.detail = "starting"

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        beat = {"pid": os.getpid(), "time": time.time(), "version": lmsd.__version__, "detail": self.detail}
        tmp.write_text(json.dumps(beat))
        os.replace(tmp, self.path)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                self.write()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


Main = Callable[[Settings, Secrets, asyncio.Event, Heartbeat], Awaitable[None]]


def run(prog: str, main: Main) -> int:
    """``python -m <prog> --data-dir D``: run ``main`` until SIGTERM/SIGINT sets the stop event."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--name", default=prog.removeprefix("lmsd-"), help="component name (its heartbeat file)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    try:
        settings = load_settings(args.data_dir)
        secrets = credentials.load(settings.data_dir)
    except LmsdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    async def body() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        paths = RunPaths(settings.data_dir)
        paths.run.mkdir(parents=True, exist_ok=True)
        heartbeat = Heartbeat(paths.heartbeat(args.name))
        beating = asyncio.create_task(heartbeat.run(stop))
        try:
            await main(settings, secrets, stop, heartbeat)
        finally:
            stop.set()
            await beating
            heartbeat.path.unlink(missing_ok=True)

    asyncio.run(body())
    return 0
