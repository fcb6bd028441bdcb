"""The Citus cluster of an embedded campus (docs/citus.md): `lmsd db add-worker` (one more worker,
shards rebalanced online while the campus serves), `lmsd db distribute` (a campus installed on plain
PostgreSQL moved onto Citus, its data kept) and the shard columns of `lmsd status`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.db import citus as db_citus
from lmsd.db.dsn import connect_args, engine_url
from lmsd.errors import Invalid, LmsdError, OperationFailed
from lmsd.ops.backup import is_installed
from lmsd.ops.report import Reporter
from lmsd.runtime import citus, control, preflight
from lmsd.settings import Settings, load_settings, set_config_value


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


async def add_shard_counts(settings: Settings, secrets: Secrets, rows: list[dict[str, Any]]) -> None:
    """Give `lmsd status`'s coordinator and worker rows their shard count and size (``citus_shards``
    on the coordinator); ``None`` when the coordinator cannot say."""
    ports = {"postgres": settings.postgres.port}
    ports.update({citus.worker_name(i): p for i, p in enumerate(settings.postgres.citus_worker_ports(), 1)})
    try:
        shards = await asyncio.wait_for(citus.node_shards(settings, secrets), 5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        shards = {}
    # The coordinator first, then the workers (they start before it, so they come first in rows).
    nodes = sorted((r for r in rows if r["name"] in ports), key=lambda r: r["name"] != "postgres")
    at = min((i for i, r in enumerate(rows) if r["name"] in ports), default=0)
    rows[at : at + len(nodes)] = nodes
    for row in rows:
        if row["name"] not in ports:
            continue
        count, size = shards.get(ports[row["name"]], (None, None))
        row["shards"], row["shard_bytes"] = count, size
        if count is not None and size is not None:
            row["detail"] = "; ".join(filter(None, [row["detail"], f"{count} shards, {_size(size)}"]))


def _require_citus(settings: Settings) -> None:
    if not is_installed(settings.data_dir):
        raise OperationFailed(f"no campus is installed in {settings.data_dir}: run `lmsd install`")
    citus.check_extension(settings)
    if settings.postgres.citus_worker_nodes:
        raise Invalid(
            "the Citus workers of this campus are postgres.citus_worker_nodes, a cluster lmsd does not run:"
            " add the node there (citus_add_node on the coordinator)"
        )


def _planned(settings: Settings, workers: int) -> Settings:
    """The settings with ``workers`` Citus workers (validated), whose new ports must be free."""
    planned = load_settings(settings.data_dir, postgres={"citus_workers": workers})
    for i in range(settings.postgres.citus_workers + 1, workers + 1):
        port = citus.worker_port(planned, i)
        if preflight.port_in_use("127.0.0.1", port):
            raise OperationFailed(
                f"port {port} (Citus worker {i}) is already in use by another program;"
                " choose other ports with `lmsd config set postgres.citus_worker_port`"
            )
    return planned


@dataclass
class AddedWorker:
    number: int
    port: int
    node_id: int
    moves: int


def add_worker(
    settings: Settings, reporter: Reporter, on_progress: Callable[[str, int, int], None]
) -> AddedWorker:
    """One more worker under the running supervisor, registered, then the shards rebalanced onto it
    (``citus_rebalance_start``: shards move online, the API keeps serving)."""
    _require_citus(settings)
    if settings.postgres.citus_workers == 0:
        raise Invalid(
            "this campus runs on plain PostgreSQL: move it to Citus first with `lmsd db distribute --workers N`"
        )
    if control.running_pid(settings) is None:
        raise OperationFailed("lmsd is not running (start it with `lmsd up`): workers join a running campus")
    secrets = credentials.load(settings.data_dir)
    n = settings.postgres.citus_workers + 1
    _planned(settings, n)
    with reporter.step(f"Initialising Citus worker {n}"):
        settings = set_config_value(settings.data_dir, "postgres.citus_workers", str(n))
        citus.initdb_worker(settings, secrets, n)
    with reporter.step(f"Starting Citus worker {n}"):
        control.command(settings, "add", citus.worker_name(n), timeout=settings.runtime.start_timeout_s + 30)
    port = citus.worker_port(settings, n)
    with reporter.step(f"Adding worker {n} to the cluster"):
        node_id = asyncio.run(citus.add_node(settings, secrets, *citus.registered_address(settings, "", port)))
    moves = asyncio.run(citus.rebalance(settings, secrets, on_progress))
    return AddedWorker(n, port, node_id, moves)


async def distribute_tables(settings: Settings, secrets: Secrets) -> list[str]:
    """``lmsd.db.citus.distribute_existing`` on one connection as the application role (the tables'
    owner), committed as a whole."""
    engine = create_async_engine(engine_url(settings, secrets), connect_args=connect_args(settings))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(db_citus.distribute_existing)
    finally:
        await engine.dispose()


def distribute(settings: Settings, workers: int, reporter: Reporter) -> list[str]:
    """Move a campus from plain PostgreSQL onto Citus with ``workers`` workers, its data kept: the
    campus restarts with Citus preloaded and the workers, the coordinator registers them, then every
    table of the plan is distributed. Running it again resumes (each step is idempotent)."""
    _require_citus(settings)
    current = settings.postgres.citus_workers
    if workers < 1:
        raise Invalid("--workers must be at least 1")
    if current and workers != current:
        raise Invalid(
            f"this campus already runs on Citus with {current} workers: grow it with `lmsd db add-worker`"
        )
    secrets = credentials.load(settings.data_dir)
    running = control.running_pid(settings) is not None
    if not current:
        _planned(settings, workers)  # refused here, before anything stops
        if running:
            with reporter.step("Stopping the campus"):
                control.stop(settings)
    with reporter.step(f"Initialising {workers} Citus workers"):
        settings = set_config_value(settings.data_dir, "postgres.citus_workers", str(workers))
        citus.initdb_workers(settings, secrets)
    if control.running_pid(settings) is None:
        with reporter.step("Starting the campus on Citus"):
            control.start(settings)
    try:
        with reporter.step("Distributing the tables"):
            tables = asyncio.run(distribute_tables(settings, secrets))
    except LmsdError:
        raise
    except Exception as exc:  # noqa: BLE001 - a refusal of Citus, reported in one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OperationFailed(f"distributing the tables failed: {reason} (run `lmsd db distribute` again)") from exc
    if not running:
        control.stop(settings)
    return tables
