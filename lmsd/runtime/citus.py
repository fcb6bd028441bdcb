"""Citus in the embedded profile (``postgres.citus_workers``): the primary is the coordinator of N
workers on this host, each a PostgreSQL of its own (data dir ``postgres-worker-<i>``, port
``postgres.citus_worker_port + i - 1``, log ``logs/postgres-worker-<i>.log``), supervised like the
primary.

Every node is made by the same ``initdb`` (same superuser, password and SCRAM on loopback), runs
with ``shared_preload_libraries = 'citus'`` and has the application role and database. Nodes
connect to each other as the role of the session (the application role, or the superuser for
maintenance) with SCRAM too: each node's server reads the passwords from ``citus.pgpass`` in its
own data dir (0600, the server's account; ``PGPASSFILE``), so nothing on loopback is trusted
without a password and no password is on a command line.

The coordinator's after-start hook creates the extension and registers the coordinator and the
workers (``citus_set_coordinator_host``, ``citus_add_node``) before anything else connects, so
migrations distribute their tables (:mod:`lmsd.db.citus`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncpg

from lmsd.credentials import Secrets
from lmsd.errors import OperationFailed
from lmsd.runtime import binaries, postgres
from lmsd.settings import LOOPBACK, Settings

PGPASS = "citus.pgpass"


def worker_name(i: int) -> str:
    return f"postgres-worker-{i}"


def worker_dir(settings: Settings, i: int) -> Path:
    return settings.data_dir / worker_name(i)


def worker_port(settings: Settings, i: int) -> int:
    return settings.postgres.citus_worker_ports()[i - 1]


def check_extension(settings: Settings) -> None:
    """Citus's library and control file are in the PostgreSQL lmsd runs, or one line says where
    lmsd looked and how to get Citus."""
    pg_config = binaries.postgres_tool("pg_config", settings)
    result = subprocess.run(
        [str(pg_config), "--pkglibdir", "--sharedir", "--version"],
        capture_output=True, text=True, check=False,
    )
    lines = result.stdout.split("\n")
    if result.returncode != 0 or len(lines) < 3:
        raise OperationFailed(f"cannot ask {pg_config} where PostgreSQL's extensions are: {result.stderr.strip()}")
    lib, share, version = Path(lines[0]), Path(lines[1]) / "extension", lines[2].strip()
    if (lib / "citus.so").is_file() and (share / "citus.control").is_file():
        return
    raise OperationFailed(
        f"Citus is not installed in the PostgreSQL lmsd runs (no citus.so in {lib} or no citus.control "
        f"in {share}): install Citus Data's packages for {version} and set postgres.bin_dir to that "
        "PostgreSQL's bin folder (docs/citus.md, Running Citus)"
    )


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def write_pgpass(settings: Settings, secrets: Secrets, data: Path) -> Path:
    """The passwords a node uses to reach the others (the superuser's and the application role's),
    0600 and owned by the server's account; rewritten at each start (passwords may rotate)."""
    entries = [
        (postgres.SUPERUSER, secrets.postgres_superuser_password),
        (settings.postgres.user, secrets.postgres_password),
    ]
    hosts = {LOOPBACK, "localhost", *(host for host, _ in settings.postgres.citus_worker_addresses())}
    lines = [
        f"{_pgpass_field(host)}:*:*:{_pgpass_field(user)}:{_pgpass_field(password)}"
        for host in sorted(hosts)
        for user, password in entries
    ]
    path = data / PGPASS
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    postgres._own(path, postgres.server_user(settings))
    return path


def server_env(data: Path) -> dict[str, str]:
    """A node's environment: libpq inside the server finds the other nodes' passwords here."""
    return {**os.environ, "PGPASSFILE": str(data / PGPASS)}


def worker_argv(settings: Settings, i: int) -> list[str | Path]:
    return [binaries.postgres_tool("postgres", settings), "-D", worker_dir(settings, i)]


def initdb_worker(settings: Settings, secrets: Secrets, i: int) -> bool:
    """initdb for worker i once, then its config. False when it already existed."""
    created = postgres.initdb_at(settings, secrets, worker_dir(settings, i))
    write_worker_config(settings, secrets, i)
    return created


def initdb_workers(settings: Settings, secrets: Secrets) -> list[int]:
    """initdb for every worker that has no cluster yet; returns their numbers."""
    return [i for i in range(1, settings.postgres.citus_workers + 1) if initdb_worker(settings, secrets, i)]


async def prepare_worker(settings: Settings, secrets: Secrets, i: int) -> None:
    """Before each start of worker i: made if missing (``citus_workers`` raised by hand; `lmsd db
    add-worker` also rebalances), then its lmsd.conf and pgpass follow the settings and secrets."""
    await asyncio.to_thread(initdb_worker, settings, secrets, i)


def write_worker_config(settings: Settings, secrets: Secrets, i: int) -> None:
    data = worker_dir(settings, i)
    conf = data / "lmsd.conf"
    conf.write_text(postgres.render_config(settings, worker_port(settings, i)))
    postgres._own(conf, postgres.server_user(settings))
    write_pgpass(settings, secrets, data)


def prepare_coordinator(settings: Settings, secrets: Secrets) -> None:
    postgres.write_config(settings)
    if settings.postgres.citus_enabled:
        write_pgpass(settings, secrets, postgres.pgdata(settings))


async def _superuser(settings: Settings, secrets: Secrets, port: int | None = None) -> asyncpg.Connection:
    dsn = postgres.superuser_dsn(settings, secrets, settings.postgres.database, port)
    return await asyncpg.connect(dsn, timeout=10)


async def bootstrap_worker(settings: Settings, secrets: Secrets, i: int) -> None:
    """After each start of worker i: the role, the database and the extension exist."""
    port = worker_port(settings, i)
    await postgres.bootstrap(settings, secrets, port)
    conn = await _superuser(settings, secrets, port)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    finally:
        await conn.close()


def registered_address(settings: Settings, host: str, port: int) -> tuple[str, int]:
    """How the coordinator names a worker: embedded workers listen on loopback."""
    return (LOOPBACK, port) if not settings.postgres.citus_worker_nodes else (host, port)


async def bootstrap_coordinator(settings: Settings, secrets: Secrets) -> None:
    """After each start of the primary: role and database, then (with Citus) the extension, the
    coordinator's own address and every worker in ``pg_dist_node`` (``citus_add_node`` returns the
    existing node when it is already there)."""
    await postgres.bootstrap(settings, secrets)
    if not settings.postgres.citus_enabled:
        return
    conn = await _superuser(settings, secrets)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
        await conn.execute("SELECT citus_set_coordinator_host($1, $2)", LOOPBACK, settings.postgres.port)
        for host, port in settings.postgres.citus_worker_addresses():
            await conn.fetchval("SELECT citus_add_node($1, $2)", *registered_address(settings, host, port))
    finally:
        await conn.close()


async def add_node(settings: Settings, secrets: Secrets, host: str, port: int) -> int:
    """Register one more worker on the coordinator; returns its node id."""
    conn = await _superuser(settings, secrets)
    try:
        return int(await conn.fetchval("SELECT citus_add_node($1, $2)", host, port))
    finally:
        await conn.close()


NODE_SHARDS_SQL = """
SELECT n.nodename, n.nodeport, n.groupid, count(s.shardid)::int AS shards,
       coalesce(sum(s.shard_size), 0)::bigint AS bytes
FROM pg_dist_node n LEFT JOIN citus_shards s ON s.nodename = n.nodename AND s.nodeport = n.nodeport
GROUP BY n.nodename, n.nodeport, n.groupid
"""


async def node_shards(settings: Settings, secrets: Secrets) -> dict[int, tuple[int, int]]:
    """Shards and their bytes per node port, from ``citus_shards`` on the coordinator."""
    conn = await _superuser(settings, secrets)
    try:
        rows = await conn.fetch(NODE_SHARDS_SQL)
    finally:
        await conn.close()
    return {int(r["nodeport"]): (int(r["shards"]), int(r["bytes"])) for r in rows}


async def rebalance(
    settings: Settings, secrets: Secrets, on_progress: Callable[[str, int, int], None], poll_s: float = 1.0
) -> int:
    """Start Citus's background rebalance (shards move online, by logical replication) and follow
    ``citus_rebalance_status()`` until it ends, calling ``on_progress(state, done, total)`` at each
    poll. Returns how many shard moves it made (0: nothing to move)."""
    conn = await _superuser(settings, secrets)
    try:
        job = await conn.fetchval("SELECT citus_rebalance_start()")
        if job is None:
            return 0
        while True:
            row = await conn.fetchrow(
                "SELECT state::text AS state, details FROM citus_rebalance_status() WHERE job_id = $1", job
            )
            if row is None:
                raise OperationFailed(f"the rebalance job {job} disappeared")
            details = json.loads(row["details"]) if isinstance(row["details"], str) else (row["details"] or {})
            counts: dict[str, int] = details.get("task_state_counts") or {}
            done, total = int(counts.get("done", 0)), sum(int(v) for v in counts.values())
            on_progress(row["state"], done, total)
            if row["state"] == "finished":
                return total
            if row["state"] in ("failed", "cancelled", "failing", "cancelling"):
                why = await conn.fetchval(
                    "SELECT message FROM pg_dist_background_task WHERE job_id = $1 AND message <> '' "
                    "ORDER BY task_id DESC LIMIT 1",
                    job,
                )
                raise OperationFailed(f"the rebalance {row['state']}: {str(why or 'no message').strip().splitlines()[0]}")
            await asyncio.sleep(poll_s)
    finally:
        await conn.close()
