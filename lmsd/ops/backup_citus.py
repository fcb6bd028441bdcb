"""`lmsd backup` and `lmsd restore` of a campus on Citus (docs/citus.md, "Backup, restore, upgrade
and replicas on Citus").

A dump through the coordinator is not a snapshot of the cluster: each worker answers from its own
transaction, so a write committed on two shards between two reads is half in the dump. What is
consistent is Citus's restore point: ``citus_create_restore_point(name)`` blocks distributed
commits for an instant and writes the same named WAL record on every node, a moment at which no
distributed transaction is half committed. A backup is therefore, per node, a physical base
backup plus the WAL up to that point, and a restore replays every node to it:

1. on every node a physical replication slot (``lmsd_backup``) keeps the WAL from now on;
2. ``pg_basebackup`` of every node (tar, gzip, with the WAL that makes it consistent alone);
3. ``citus_create_restore_point`` on the coordinator;
4. ``pg_switch_wal()`` on every node (the segment holding the point is complete), then the
   segments from the slot's start to it are copied, gzipped; the slots are dropped.

Archive members, per node (``postgres`` = the coordinator, ``postgres-worker-<i>``)::

    db/citus/<node>/base.tar.gz, pg_wal.tar.gz, backup_manifest    pg_basebackup -Ft -z -X stream
    db/citus/<node>/wal/<segment>.gz                                 WAL up to the restore point

and the manifest's ``topology``: ``{"citus_workers": N, "nodes": [...], "restore_point": name}``
(``{"citus_workers": 0}`` for a campus on plain PostgreSQL, whose database is ``db/lmsd.dump``).

Restore puts each node's base backup in its data dir and its WAL in ``restore-wal/<node>``,
starts every node in archive recovery (``recovery_target_name``, then promote) and waits until
each has left recovery; the supervisor then starts the cluster as usual. The campus keeps
serving during a backup: nothing is paused but distributed commits, for the restore point.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from lmsd.credentials import Secrets
from lmsd.db import migrate
from lmsd.errors import Invalid, OperationFailed
from lmsd.runtime import binaries, citus, postgres
from lmsd.runtime.process import last_log_line, run_tool, spawn
from lmsd.settings import Settings

SLOT = "lmsd_backup"
COORDINATOR = "postgres"


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    data: Path


def nodes(settings: Settings) -> list[Node]:
    """The coordinator, then each embedded worker."""
    workers = [
        Node(citus.worker_name(i), citus.worker_port(settings, i), citus.worker_dir(settings, i))
        for i in range(1, settings.postgres.citus_workers + 1)
    ]
    return [Node(COORDINATOR, settings.postgres.port, postgres.pgdata(settings)), *workers]


def archive_workers(manifest: dict[str, Any]) -> int:
    """The Citus workers of the campus an archive holds (0: plain PostgreSQL, and archives made
    before Citus, which have no topology)."""
    topology = manifest.get("topology") or {}
    return int(topology.get("citus_workers", 0))


def required_members(manifest: dict[str, Any]) -> list[str]:
    """The database members an archive must have, after its topology (checked for sense)."""
    workers = archive_workers(manifest)
    if not workers:
        return ["db/lmsd.dump"]
    topology = manifest["topology"]
    expected = [COORDINATOR, *(citus.worker_name(i) for i in range(1, workers + 1))]
    if topology.get("nodes") != expected or not str(topology.get("restore_point", "")):
        raise Invalid(
            f"its topology is damaged: {workers} Citus workers, nodes {topology.get('nodes')},"
            f" restore point {topology.get('restore_point')!r}"
        )
    return [f"db/citus/{name}/base.tar.gz" for name in expected]


def check_topology(archive: Path, manifest: dict[str, Any], planned: Settings) -> None:
    """Refuse, before anything changes, an archive that cannot be restored into ``planned`` (the
    settings the restored campus would run with: the archive's config under this environment)."""
    workers = archive_workers(manifest)
    pg = planned.postgres
    if pg.citus_worker_nodes:
        raise Invalid(
            f"{archive} cannot be restored here: postgres.citus_worker_nodes names Citus workers lmsd does not"
            " run; restore their data with the cluster's own tools"
        )
    if workers != pg.citus_workers:
        held = f"a Citus cluster with {workers} workers" if workers else "a campus on plain PostgreSQL"
        into = f"{pg.citus_workers} Citus workers" if pg.citus_workers else "plain PostgreSQL"
        raise Invalid(
            f"{archive} holds {held} but the settings here would restore it into {into}"
            " (LMSD_POSTGRES__CITUS_WORKERS in the environment?): restore it with its own topology"
            + ("" if workers else ", then `lmsd db distribute`")
        )
    if workers:
        citus.check_extension(planned)


def refuse_external(settings: Settings) -> None:
    if settings.postgres.citus_worker_nodes:
        raise OperationFailed(
            "the Citus workers of this campus run outside lmsd (postgres.citus_worker_nodes): back the cluster"
            " up with its own tools (citus_create_restore_point and per-node base backups, docs/citus.md)"
        )


# -- backup -----------------------------------------------------------------------------------


async def _connect(settings: Settings, secrets: Secrets, port: int) -> asyncpg.Connection:
    dsn = postgres.superuser_dsn(settings, secrets, settings.postgres.database, port)
    return await asyncpg.connect(dsn, timeout=10)


def _basebackup(settings: Settings, secrets: Secrets, node: Node, dest: Path, label: str) -> None:
    env = postgres.tool_env(settings, secrets)
    env["PGPORT"] = str(node.port)
    result = run_tool(
        [
            binaries.postgres_tool("pg_basebackup", settings),
            "-D", dest,
            "--format=tar", "--gzip",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",  # the archive is what is kept
            "--label", label,
        ],
        env=env,
        timeout=3600,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise OperationFailed(f"pg_basebackup of {node.name} failed: {lines[-1] if lines else 'no output'}")


def _segment_key(name: str) -> tuple[str, str] | None:
    """(timeline, position) of a WAL segment file name, None for anything else."""
    if len(name) != 24:
        return None
    try:
        int(name, 16)
    except ValueError:
        return None
    return name[:8], name[8:]


def _copy_wal(node: Node, first: str, last: str, dest: Path) -> int:
    """Segments ``first``..``last`` (same timeline) of the node's pg_wal, gzipped into ``dest``,
    with the timeline histories. Returns how many segments."""
    dest.mkdir(parents=True)
    copied: set[str] = set()
    for path in sorted((node.data / "pg_wal").iterdir()):
        key = _segment_key(path.name)
        wanted = key is not None and key[0] == last[:8] and first[8:] <= key[1] <= last[8:]
        if not (wanted or path.name.endswith(".history")):
            continue
        with open(path, "rb") as src, gzip.open(dest / f"{path.name}.gz", "wb", compresslevel=1) as out:
            shutil.copyfileobj(src, out, 1 << 20)
        copied.add(path.name)
    if first not in copied or last not in copied:
        raise OperationFailed(f"the WAL of {node.name} from {first} to {last} is not all in its pg_wal")
    return sum(1 for name in copied if _segment_key(name))


async def _snapshot(settings: Settings, secrets: Secrets, out: Path) -> str:
    """Steps 1-4 of the module's docstring into ``out``; returns the restore point's name."""
    point = "lmsd-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    members = nodes(settings)
    conns: list[asyncpg.Connection] = []
    try:
        for node in members:
            conns.append(await _connect(settings, secrets, node.port))
            await conns[-1].execute(  # the slot of a backup that died
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", SLOT
            )
            await conns[-1].execute("SELECT pg_create_physical_replication_slot($1, true)", SLOT)
        for node in members:
            await asyncio.to_thread(_basebackup, settings, secrets, node, out / node.name, point)
        await conns[0].execute("SELECT citus_create_restore_point($1)", point)
        for node, conn in zip(members, conns, strict=True):
            first = await conn.fetchval(
                "SELECT (pg_walfile_name_offset(restart_lsn)).file_name FROM pg_replication_slots"
                " WHERE slot_name = $1",
                SLOT,
            )
            last = await conn.fetchval("SELECT pg_walfile_name(pg_switch_wal())")
            await asyncio.to_thread(_copy_wal, node, str(first), str(last), out / node.name / "wal")
    finally:
        for conn in conns:
            with contextlib.suppress(OSError, asyncpg.PostgresError):  # else dropped at the next backup
                await conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    SLOT,
                )
            await conn.close()
    return point


async def _dump(settings: Settings, secrets: Secrets, out: Path) -> tuple[dict[str, Any], str]:
    point = await _snapshot(settings, secrets, out)
    topology = {
        "citus_workers": settings.postgres.citus_workers,
        "nodes": [node.name for node in nodes(settings)],
        "restore_point": point,
    }
    return topology, await migrate.current(settings, secrets)


async def _dump_offline(settings: Settings, secrets: Secrets, out: Path) -> tuple[dict[str, Any], str]:
    async with postgres.temporary_server(settings, secrets):
        return await _dump(settings, secrets, out)


def dump(settings: Settings, secrets: Secrets, db_dir: Path, running: bool) -> tuple[dict[str, Any], str]:
    """Back every node up into ``db_dir/citus`` (the campus running, or each node started alone).
    Returns the manifest's topology and the schema revision."""
    refuse_external(settings)
    out = db_dir / "citus"
    out.mkdir(parents=True)
    return asyncio.run((_dump if running else _dump_offline)(settings, secrets, out))


# -- restore ----------------------------------------------------------------------------------


def _own_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            postgres._own(Path(root) / name, user)
    postgres._own(path, user)


def _wal_dir(settings: Settings, node: Node) -> Path:
    """Where a node's recovery finds its WAL (the server's account reaches it when we are root)."""
    return settings.data_dir / "restore-wal" / node.name


def _lay_out(settings: Settings, secrets: Secrets, staging: Path) -> None:
    """Each node's base backup into its data dir, its WAL into its restore dir, recovery.signal."""
    user = postgres.server_user(settings)
    for node in nodes(settings):
        src = staging / "db" / "citus" / node.name
        shutil.rmtree(node.data, ignore_errors=True)
        node.data.mkdir(mode=0o700, parents=True)
        with tarfile.open(src / "base.tar.gz", "r:gz") as tar:
            tar.extractall(node.data, filter="data")
        (node.data / "pg_wal").mkdir(mode=0o700, exist_ok=True)
        for wal_tar in src.glob("pg_wal.tar*"):  # the WAL that makes the base backup consistent
            with tarfile.open(wal_tar, "r:*") as tar:
                tar.extractall(node.data / "pg_wal", filter="data")
        os.chmod(node.data, 0o700)
        wal = _wal_dir(settings, node)
        shutil.rmtree(wal, ignore_errors=True)
        wal.mkdir(mode=0o700, parents=True)
        for packed in (src / "wal").iterdir():
            with gzip.open(packed, "rb") as data, open(wal / packed.name.removesuffix(".gz"), "wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)
        (node.data / "recovery.signal").touch()
        _own_tree(node.data, user)
        _own_tree(wal.parent, user)
        if user:
            postgres._make_traversable(node.data)
            postgres._make_traversable(wal)
    citus.prepare_coordinator(settings, secrets)
    for i in range(1, settings.postgres.citus_workers + 1):
        citus.write_worker_config(settings, secrets, i)


async def _wait_promoted(settings: Settings, secrets: Secrets, node: Node, proc: asyncio.subprocess.Process) -> None:
    log = settings.data_dir / "logs" / f"{node.name}.log"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(settings.runtime.start_timeout_s, 600)
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise OperationFailed(f"{node.name} did not recover to the backup's restore point: {last_log_line(log)}")
        try:
            conn = await asyncpg.connect(postgres.superuser_dsn(settings, secrets, port=node.port), timeout=2)
            try:
                if not await conn.fetchval("SELECT pg_is_in_recovery()"):
                    return
            finally:
                await conn.close()
        except (TimeoutError, OSError, asyncpg.PostgresError):
            pass  # not accepting connections before it is consistent
        await asyncio.sleep(0.3)
    raise OperationFailed(f"{node.name} did not finish its recovery in time: {last_log_line(log)}")


async def _recover(settings: Settings, secrets: Secrets, point: str) -> None:
    """Every node in archive recovery up to the restore point, then promoted, then stopped."""
    procs: list[asyncio.subprocess.Process] = []
    members = nodes(settings)
    try:
        for node in members:
            argv: list[str | Path] = [
                binaries.postgres_tool("postgres", settings), "-D", node.data,
                "-c", f"restore_command=cp \"{_wal_dir(settings, node)}/%f\" \"%p\"",
                "-c", f"recovery_target_name={point}",
                "-c", "recovery_target_action=promote",
            ]
            procs.append(
                await spawn(
                    argv,
                    log_file=settings.data_dir / "logs" / f"{node.name}.log",
                    env=citus.server_env(node.data),
                    user=postgres.server_user(settings),
                )
            )
        for node, proc in zip(members, procs, strict=True):
            await _wait_promoted(settings, secrets, node, proc)
    finally:
        for proc in procs:
            await postgres.stop_server(settings, proc)


def restore_cluster(settings: Settings, secrets: Secrets, staging: Path, manifest: dict[str, Any]) -> None:
    """Restore every node of the archive unpacked in ``staging`` to its restore point."""
    _lay_out(settings, secrets, staging)
    asyncio.run(_recover(settings, secrets, str(manifest["topology"]["restore_point"])))
    shutil.rmtree(settings.data_dir / "restore-wal", ignore_errors=True)
