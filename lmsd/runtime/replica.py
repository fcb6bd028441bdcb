"""Streaming read replicas of the embedded PostgreSQL (``postgres.replicas``).

Replica n lives in ``<data_dir>/postgres-replica-<n>``, listens on ``postgres.port + n`` and is
made once with ``pg_basebackup -R`` from the running primary, with the same binaries and as the
same OS account. After that it streams WAL from the primary as ``lmsd_replicator``. Deleting the
folder is how an admin rebuilds one: the next start makes it again.

The lag query (``lmsd.db.routing.STATE_SQL``) is shared by two readers: `lmsd status` (as the
superuser, here) and the API's routing session (as the application role), which must agree on
what "lagging" means.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import asyncpg

from lmsd.credentials import Secrets
from lmsd.db.routing import STATE_SQL
from lmsd.errors import OperationFailed
from lmsd.runtime import binaries, postgres
from lmsd.runtime.health import ProbeResult
from lmsd.runtime.health import _reason as reason
from lmsd.runtime.process import run_tool
from lmsd.settings import Settings


def replica_dir(settings: Settings, n: int) -> Path:
    return settings.data_dir / f"postgres-replica-{n}"


def replica_port(settings: Settings, n: int) -> int:
    return settings.postgres.replica_ports()[n - 1]


def is_built(settings: Settings, n: int) -> bool:
    data = replica_dir(settings, n)
    return (data / "PG_VERSION").exists() and (data / "standby.signal").exists()


def server_argv(settings: Settings, n: int) -> list[str | Path]:
    return [binaries.postgres_tool("postgres", settings), "-D", replica_dir(settings, n)]


def _conninfo(settings: Settings, secrets: Secrets, n: int) -> str:
    # Generated passwords are URL-safe tokens: no quoting needed inside the conninfo string.
    return (
        f"host=127.0.0.1 port={settings.postgres.port} user={postgres.REPLICATION_USER}"
        f" password={secrets.postgres_replication_password}"
        f" application_name=postgres-replica-{n} sslmode=disable"
    )


def basebackup(settings: Settings, secrets: Secrets, n: int) -> None:
    """Copy the running primary into replica n's folder (replacing a half-made one)."""
    user = postgres.server_user(settings)
    target = replica_dir(settings, n)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(mode=0o700, parents=True)
    postgres._own(target, user)
    env = dict(os.environ)
    env["PGPASSWORD"] = secrets.postgres_replication_password  # never on argv
    result = run_tool(
        [
            binaries.postgres_tool("pg_basebackup", settings),
            "--host", "127.0.0.1",
            "--port", str(settings.postgres.port),
            "--username", postgres.REPLICATION_USER,
            "--no-password",
            "--pgdata", target,
            "--write-recovery-conf",  # -R: standby.signal and primary_conninfo
            "--wal-method", "stream",
            "--checkpoint", "fast",
        ],
        env=env,
        user=user,
    )
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        # The first error is the cause; the last is often only "failed to remove contents...".
        lines = result.stderr.strip().splitlines() or ["no output"]
        cause = next((ln for ln in lines if "error:" in ln), lines[-1])
        raise OperationFailed(f"pg_basebackup for replica {n} failed: {cause}")
    # The copy carries the primary's log (tests keep one in the data dir); start clean.
    (target / "server.log").unlink(missing_ok=True)


def write_config(settings: Settings, secrets: Secrets, n: int) -> None:
    """Follow the settings at every start: the replica's port, and the primary's port and
    password in ``primary_conninfo`` (-R wrote them once, into postgresql.auto.conf)."""
    data = replica_dir(settings, n)
    user = postgres.server_user(settings)
    conf = data / "lmsd.conf"
    conf.write_text(postgres.render_config(settings, replica_port(settings, n)) + "hot_standby = on\n")
    postgres._own(conf, user)
    auto = data / "postgresql.auto.conf"
    kept = [ln for ln in auto.read_text().splitlines() if not ln.startswith("primary_conninfo")]
    auto.write_text("\n".join([*kept, f"primary_conninfo = '{_conninfo(settings, secrets, n)}'", ""]))
    os.chmod(auto, 0o600)  # it holds the replication password
    postgres._own(auto, user)


async def prepare(settings: Settings, secrets: Secrets, n: int) -> None:
    """Before each start: build the replica if it is missing, then rewrite its config."""
    if not is_built(settings, n):
        # pg_basebackup takes as long as the database is big: keep the supervisor responsive.
        await asyncio.to_thread(basebackup, settings, secrets, n)
    write_config(settings, secrets, n)


async def probe(settings: Settings, secrets: Secrets, n: int, timeout: float = 3) -> ProbeResult:
    """Healthy = answers and is still a standby; the detail and ``lag_ms`` say how far behind."""
    start = time.perf_counter()
    dsn = postgres.superuser_dsn(settings, secrets, port=replica_port(settings, n))
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
        try:
            version = await conn.fetchval("SHOW server_version")
            state = await conn.fetchrow(STATE_SQL)
            receiver = await conn.fetchval("SELECT status FROM pg_stat_wal_receiver")
        finally:
            await conn.close()
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return ProbeResult(False, detail=reason(exc))
    latency = (time.perf_counter() - start) * 1000
    assert state is not None
    if not state["in_recovery"]:
        return ProbeResult(False, str(version), latency, "not a standby any more (promoted?)")
    lag = state["lag_ms"]
    lag_text = "lag unknown" if lag is None else f"lag {lag:.0f} ms"
    detail = f"{receiver or 'not streaming'}, {lag_text}"
    return ProbeResult(True, str(version), latency, detail, lag_ms=None if lag is None else round(lag, 1))
