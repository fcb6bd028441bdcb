"""PostgreSQL for the embedded profile: binaries from the ``pgserver`` wheel, a real ``initdb``,
loopback only, password (SCRAM) authentication with generated passwords.

PostgreSQL refuses to run as root, so when lmsd runs as root the server runs as a dedicated
system account (``postgres.system_user``, created if missing) that owns only the cluster dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from lmsd.credentials import Secrets
from lmsd.errors import OperationFailed
from lmsd.runtime import binaries
from lmsd.runtime.process import run_tool, spawn
from lmsd.settings import Settings

SUPERUSER = "postgres"
REPLICATION_USER = "lmsd_replicator"  # streams WAL to the read replicas; nothing else
REPLICATION_HBA = f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256"


def pgdata(settings: Settings) -> Path:
    return settings.data_dir / "postgres"


def server_user(settings: Settings) -> str | None:
    """The OS account the server runs as: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    name = settings.postgres.system_user
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OperationFailed(f"cannot create system user {name!r}: {result.stderr.strip()}")
    return name


def _make_traversable(path: Path) -> None:
    """Let the server's account reach its dir: add search (x, not read) on each parent."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)


def _own(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def is_initialised(settings: Settings) -> bool:
    return (pgdata(settings) / "PG_VERSION").exists()


def initdb(settings: Settings, secrets: Secrets) -> bool:
    """Create the cluster once. Returns False when it already existed."""
    if not initdb_at(settings, secrets, pgdata(settings)):
        return False
    write_config(settings)
    return True


def initdb_at(settings: Settings, secrets: Secrets, data: Path) -> bool:
    """initdb into ``data`` once (the primary, or a Citus worker): the same superuser, password and
    authentication everywhere. Returns False when it already existed."""
    if (data / "PG_VERSION").exists():
        return False
    user = server_user(settings)
    if data.exists():
        shutil.rmtree(data)  # a half-made cluster from an interrupted install
    data.mkdir(mode=0o700, parents=True)
    _own(data, user)
    if user:
        _make_traversable(data)
    pwfile = settings.data_dir / "run" / "initdb.pw"
    pwfile.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.postgres_superuser_password + "\n")
    _own(pwfile, user)
    if user:
        _own(pwfile.parent, user)
    try:
        result = run_tool(
            [
                binaries.postgres_tool("initdb", settings),
                "-D", data,
                "-U", SUPERUSER,
                "--pwfile", pwfile,
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--data-checksums",
            ],
            user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
        if user:
            os.chown(pwfile.parent, os.getuid(), os.getgid())
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise OperationFailed(f"initdb failed: {last}")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\n# Settings owned by lmsd, rewritten at every start.\ninclude 'lmsd.conf'\n")
    return True


def write_config(settings: Settings) -> None:
    """The part of postgresql.conf that follows lmsd's settings (ports may change)."""
    conf = pgdata(settings) / "lmsd.conf"
    conf.write_text(render_config(settings, settings.postgres.port))
    _own(conf, server_user(settings))
    if settings.postgres.replicas:
        _allow_replication(settings)


def _allow_replication(settings: Settings) -> None:
    """initdb's pg_hba already lets loopback replicate with SCRAM; say so explicitly for our
    role, so an admin who trims the defaults does not silently break the replicas."""
    hba = pgdata(settings) / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if REPLICATION_HBA not in lines:
        hba.write_text("\n".join([*lines, "# lmsd read replicas", REPLICATION_HBA, ""]))


def render_config(settings: Settings, port: int) -> str:
    """lmsd.conf for the primary, and (with its own port) for each replica."""
    # Replicas that were down for a while catch up from the WAL the primary keeps; past that
    # they need a rebuild (docs/admin/replicas.md).
    keep = ["wal_keep_size = 512MB"] if settings.postgres.replicas else []
    # Citus on every node: the extension preloaded; logical WAL so that shards move online
    # (citus_rebalance_start); node-to-node connections over loopback need no TLS.
    citus = (
        [
            "shared_preload_libraries = 'citus'",
            "citus.node_conninfo = 'sslmode=prefer'",
            f"citus.shard_count = {settings.postgres.citus_shard_count}",
            "max_replication_slots = 20",
        ]
        if settings.postgres.citus_enabled
        else []
    )
    wal_level = "logical" if settings.postgres.citus_enabled else "replica"
    return "\n".join(
        [
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            "unix_socket_directories = ''",
            "max_connections = 200",
            "shared_buffers = 128MB",
            f"wal_level = {wal_level}",
            "max_wal_senders = 20" if citus else "max_wal_senders = 10",
            "logging_collector = off",
            "log_min_messages = warning",
            "log_line_prefix = '%m [%p] '",
            *keep,
            *citus,
            "",
        ]
    )


def server_argv(settings: Settings) -> list[str | Path]:
    return [binaries.postgres_tool("postgres", settings), "-D", pgdata(settings)]


def superuser_dsn(
    settings: Settings, secrets: Secrets, database: str = "postgres", port: int | None = None
) -> str:
    """The superuser on the server this runtime runs (on loopback, whatever ``postgres.host``
    says: clients of the campus database use :mod:`lmsd.db.dsn`)."""
    return (
        f"postgresql://{SUPERUSER}:{secrets.postgres_superuser_password}"
        f"@127.0.0.1:{port or settings.postgres.port}/{database}"
    )


def tool_env(settings: Settings, secrets: Secrets) -> dict[str, str]:
    """Environment for pg_dump/pg_restore as the superuser, without a password on argv."""
    env = dict(os.environ)
    env.update(
        PGHOST="127.0.0.1",
        PGPORT=str(settings.postgres.port),
        PGUSER=SUPERUSER,
        PGPASSWORD=secrets.postgres_superuser_password,
    )
    return env


async def bootstrap(settings: Settings, secrets: Secrets, port: int | None = None) -> None:
    """Make sure the application role and database exist (idempotent; run after each start), on
    the primary or (``port``) on a Citus worker, which gets the same role and password."""
    pg = settings.postgres
    conn = await asyncpg.connect(superuser_dsn(settings, secrets, port=port), timeout=10)
    try:
        role = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", pg.user)
        password = secrets.postgres_password.replace("'", "''")
        verb = "ALTER" if role else "CREATE"
        await conn.execute(f'{verb} ROLE "{pg.user}" LOGIN PASSWORD \'{password}\'')
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", pg.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{pg.database}" OWNER "{pg.user}"')
        if port is None:
            await _bootstrap_replication(conn, settings, secrets)
    finally:
        await conn.close()


async def _bootstrap_replication(conn: asyncpg.Connection, settings: Settings, secrets: Secrets) -> None:
    """The replication role can log in only while replicas are configured."""
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", REPLICATION_USER)
    if settings.postgres.replicas:
        password = secrets.postgres_replication_password.replace("'", "''")
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE {REPLICATION_USER} LOGIN REPLICATION PASSWORD '{password}'")
    elif exists:
        await conn.execute(f"ALTER ROLE {REPLICATION_USER} NOLOGIN")


async def wait_ready(
    settings: Settings,
    secrets: Secrets,
    timeout: float,
    proc: asyncio.subprocess.Process | None = None,
    port: int | None = None,
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    last = "no answer"
    while asyncio.get_running_loop().time() < deadline:
        if proc is not None and proc.returncode is not None:
            raise OperationFailed(f"PostgreSQL exited with code {proc.returncode} while starting")
        try:
            conn = await asyncpg.connect(superuser_dsn(settings, secrets, port=port), timeout=2)
            await conn.close()
            return
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            last = str(exc) or type(exc).__name__
        await asyncio.sleep(0.2)
    raise OperationFailed(f"PostgreSQL did not become ready in {timeout:.0f}s: {last}")


@contextlib.asynccontextmanager
async def temporary_server(settings: Settings, secrets: Secrets) -> AsyncIterator[None]:
    """PostgreSQL alone, for maintenance while the stack is down (backup, restore, upgrade). With
    Citus, the embedded workers first (each with its pgpass, ``PGPASSFILE``), then the coordinator,
    bootstrapped as the supervisor does it (extension, nodes registered), so that statements
    through the coordinator reach the shards."""
    from lmsd.runtime import citus  # citus builds on this module

    procs: list[asyncio.subprocess.Process] = []
    user = server_user(settings)
    timeout = settings.runtime.start_timeout_s
    try:
        for i in range(1, settings.postgres.citus_workers + 1):
            await asyncio.to_thread(citus.initdb_worker, settings, secrets, i)  # as the supervisor's prepare
            data = citus.worker_dir(settings, i)
            log = settings.data_dir / "logs" / f"{citus.worker_name(i)}.log"
            procs.append(await spawn(citus.worker_argv(settings, i), log_file=log, env=citus.server_env(data), user=user))
            await wait_ready(settings, secrets, timeout, procs[-1], port=citus.worker_port(settings, i))
            await citus.bootstrap_worker(settings, secrets, i)
        citus.prepare_coordinator(settings, secrets)
        env = citus.server_env(pgdata(settings)) if settings.postgres.citus_enabled else None
        procs.append(
            await spawn(server_argv(settings), log_file=settings.data_dir / "logs" / "postgres.log", env=env, user=user)
        )
        await wait_ready(settings, secrets, timeout, procs[-1])
        await citus.bootstrap_coordinator(settings, secrets)
        yield
    finally:
        for proc in reversed(procs):  # the coordinator first, then the workers
            await stop_server(settings, proc)


async def stop_server(settings: Settings, proc: asyncio.subprocess.Process) -> None:
    """Fast shutdown (roll back sessions, checkpoint); killed when it does not end in time."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), settings.runtime.stop_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
