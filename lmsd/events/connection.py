"""How the event processes and the CLI reach PostgreSQL (asyncpg) and NATS: to the addresses in
the settings (``postgres.*`` through :mod:`lmsd.db.dsn`, ``nats.*`` here), with TLS when they
say so. Nothing here knows which profile started the servers."""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client as NATS

from lmsd.credentials import Secrets
from lmsd.db.availability import lost_node
from lmsd.db.dsn import app_dsn, ssl_arg
from lmsd.settings import Settings
from lmsd.settings.addresses import join_host_port

log = logging.getLogger("lmsd.events")

NATS_USER = "lmsd"  # the one account of the campus's NATS (password: secrets.nats_password)

# Everything the database can raise under a running service: refusals, and a database away or
# restarting (asyncpg's InternalClientError included: the connection was lost in the middle of
# an operation). ``database_away`` tells the two apart.
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is away, restarting or not migrated yet (try the same
    work again later) rather than refusing this work: no answer at all, or SQLSTATE class 08
    (connection), 53 (resources), 57 (shutdown), an undefined table or database, a Citus worker
    lost in the middle of a statement (:func:`lmsd.db.availability.lost_node`). lmsd-projector
    sorts its errors the same way (rust/projector/src/consumer.rs ``unavailable``)."""
    if isinstance(exc, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        code = str(getattr(exc, "sqlstate", "") or "")
        return code[:2] in ("08", "53", "57") or code in ("42P01", "3D000") or lost_node(code, str(exc))
    return False


async def json_codecs(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python values, as on the API's SQLAlchemy connections."""
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def pg_connect(settings: Settings, secrets: Secrets, timeout: float = 5) -> asyncpg.Connection:
    conn = await asyncpg.connect(app_dsn(settings, secrets), ssl=ssl_arg(settings), timeout=timeout)
    await json_codecs(conn)
    return conn


async def pg_pool(
    settings: Settings, secrets: Secrets, size: int = 4, server_settings: dict[str, str] | None = None
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        app_dsn(settings, secrets),
        ssl=ssl_arg(settings),
        min_size=1,
        max_size=size,
        init=json_codecs,
        server_settings=server_settings,
    )
    assert pool is not None
    return pool


def nats_url(settings: Settings) -> str:
    """``nats://host:port``, or ``tls://host:port`` when ``nats.tls`` is on."""
    scheme = "tls" if settings.nats.tls else "nats"
    return f"{scheme}://{join_host_port(settings.nats.host, settings.nats.port)}"


def nats_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for NATS: the system's trust store, or ``nats.tls_ca_file``."""
    if not settings.nats.tls:
        return None
    return ssl.create_default_context(cafile=settings.nats.tls_ca_file or None)


async def _connect(settings: Settings, secrets: Secrets, name: str, **options: Any) -> NATS:
    """A connection to ``nats.*`` as lmsd's NATS user; ``options`` say how it reconnects."""
    return await nats.connect(
        servers=[nats_url(settings)], tls=nats_tls(settings), user=NATS_USER, password=secrets.nats_password,
        name=name, **options,
    )


async def nats_connect(settings: Settings, secrets: Secrets, timeout: float = 5, name: str = "lmsd-cli") -> NATS:
    """One connection for a one-shot job (CLI, probe): fails fast, no background reconnects."""

    async def quiet(_: Exception) -> None:
        return None

    return await _connect(
        settings,
        secrets,
        name,
        connect_timeout=timeout,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        error_cb=quiet,
    )


async def nats_service(settings: Settings, secrets: Secrets, name: str) -> NATS:
    """A connection for a supervised service: keeps reconnecting while NATS restarts."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await _connect(
        settings,
        secrets,
        name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        error_cb=on_error,
    )
