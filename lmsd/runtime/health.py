"""Real health probes: each one talks to the component the way its users do."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import httpx
from nats.errors import Error as NatsError

from lmsd.credentials import Secrets
from lmsd.events.connection import nats_connect
from lmsd.runtime import postgres
from lmsd.settings import Settings


@dataclass
class ProbeResult:
    ok: bool
    version: str = ""
    latency_ms: float = 0.0
    detail: str = ""
    lag_ms: float | None = None  # read replicas only: how far behind the primary

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (ConnectionRefusedError, httpx.ConnectError)):
        return "connection refused (not running)"
    if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
        return "timed out"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def probe_postgres(
    settings: Settings,
    secrets: Secrets,
    timeout: float = 3,
    require_database: bool = True,
    port: int | None = None,
) -> ProbeResult:
    """The primary (or, with ``port``, a Citus worker) answers as the superuser."""
    start = time.perf_counter()
    try:
        conn = await asyncpg.connect(postgres.superuser_dsn(settings, secrets, port=port), timeout=timeout)
        try:
            version = await conn.fetchval("SHOW server_version")
            has_db = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", settings.postgres.database
            )
        finally:
            await conn.close()
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return ProbeResult(False, detail=_reason(exc))
    latency = (time.perf_counter() - start) * 1000
    if require_database and not has_db:
        return ProbeResult(False, version, latency, f"database {settings.postgres.database!r} missing")
    return ProbeResult(True, str(version), latency)


async def probe_nats(settings: Settings, secrets: Secrets, timeout: float = 3) -> ProbeResult:
    start = time.perf_counter()
    nc = None
    try:
        nc = await nats_connect(settings, secrets, timeout)
        info = await nc.jetstream().account_info()
        version = nc._server_info.get("version", "")
    except (TimeoutError, OSError, NatsError) as exc:
        return ProbeResult(False, detail=_reason(exc))
    finally:
        if nc is not None and not nc.is_closed:
            await nc.close()
    latency = (time.perf_counter() - start) * 1000
    return ProbeResult(True, str(version), latency, f"JetStream: {info.streams} streams")


async def probe_http(url: str, timeout: float = 3) -> ProbeResult:
    start = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
    except (httpx.HTTPError, OSError) as exc:
        return ProbeResult(False, detail=_reason(exc))
    latency = (time.perf_counter() - start) * 1000
    try:
        body = response.json()
    except ValueError:
        body = {}
    version = str(body.get("version", "")) if isinstance(body, dict) else ""
    if response.status_code != 200:
        detail = body.get("detail", "") if isinstance(body, dict) else ""
        return ProbeResult(False, version, latency, detail or f"HTTP {response.status_code}")
    detail = ""
    if isinstance(body, dict) and body.get("schema"):
        detail = f"schema {body['schema']}"
    return ProbeResult(True, version, latency, detail)


HEARTBEAT_MAX_AGE_S = 5.0


async def probe_heartbeat(path: Path) -> ProbeResult:
    """A service loop that writes ``path`` every second (pid, time, what it did) is alive."""
    try:
        beat = json.loads(path.read_text())
        age = time.time() - float(beat["time"])
        os.kill(int(beat["pid"]), 0)
    except FileNotFoundError:
        return ProbeResult(False, detail="not started")
    except ProcessLookupError:
        return ProbeResult(False, detail="not running")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ProbeResult(False, detail=f"unreadable heartbeat: {exc}")
    if age > HEARTBEAT_MAX_AGE_S:
        return ProbeResult(False, detail=f"stalled: last heartbeat {age:.0f}s ago")
    return ProbeResult(True, str(beat.get("version", "")), 0.0, str(beat.get("detail", "")))
