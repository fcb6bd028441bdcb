"""A raw Citus cluster for the tests: a coordinator and workers from the pgserver wheel's binaries.

Tests only, and independent of lmsd's runtime: ``initdb`` + ``pg_ctl`` of each node under one
temporary dir, ``shared_preload_libraries = 'citus'``, loopback ports, trust authentication on
loopback (the nodes connect to each other as the session's role without passwords). Databases are
made on every node with :meth:`CitusCluster.create_database`; lmsd's Settings and Secrets for a
database on the coordinator come from :meth:`CitusCluster.campus`, migrated and with campus A and
its admin as ``tests.db.start_database`` makes them on plain PostgreSQL.

``create_database(name, citus=False)`` leaves the coordinator's database without the extension
(a campus migrated before Citus); :meth:`CitusCluster.enable_citus` then creates it and registers
the nodes, as ``lmsd db distribute`` expects to find them.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from lmsd import credentials
from lmsd.db import migrate
from lmsd.ops.install import initialise_campus
from lmsd.runtime import binaries, postgres
from lmsd.runtime.process import run_tool
from lmsd.settings import load_settings, write_config_file
from tests.db import Database
from tests.support import ADMIN_PASSWORD, free_port_block

HOST = "127.0.0.1"
SUPERUSER = "postgres"
WORKERS = 2
# Fewer shards than Citus's default 32: the plan's 20-odd tables times 32 shards make every
# migration slow on two cores, and routing is the same with 8.
SHARD_COUNT = 8


def _check(result: object, what: str) -> None:
    code = getattr(result, "returncode", 1)
    if code != 0:
        raise RuntimeError(f"{what} failed: {getattr(result, 'stderr', '')}")


@dataclass
class CitusCluster:
    root: Path
    ports: list[int] = field(default_factory=list)  # the coordinator's, then each worker's
    user: str | None = None  # the OS account the servers run as (lmsd's, when we are root)
    started: list[Path] = field(default_factory=list)

    @property
    def coordinator_port(self) -> int:
        return self.ports[0]

    @property
    def worker_ports(self) -> list[int]:
        return self.ports[1:]

    def node_dir(self, i: int) -> Path:
        return self.root / ("coordinator" if i == 0 else f"worker-{i}")

    def start(self, workers: int = WORKERS) -> None:
        base = free_port_block(1 + workers)
        self.ports = [base + i for i in range(1 + workers)]
        self.root.mkdir(parents=True, exist_ok=True)
        # The account PostgreSQL runs as when we are root: lmsd's own rule (a Settings is needed).
        self.user = postgres.server_user(load_settings(self._settings_dir("cluster")))
        for i, port in enumerate(self.ports):
            self._initdb(self.node_dir(i), port)
        for i in range(len(self.ports)):
            data = self.node_dir(i)
            result = run_tool(
                [binaries.postgres_tool("pg_ctl"), "-D", data, "-w", "-t", "60", "-l", data / "server.log", "start"],
                user=self.user,
            )
            _check(result, f"pg_ctl start {data.name}")
            self.started.append(data)

    def _settings_dir(self, name: str) -> Path:
        path = self.root / name
        if not (path / "config.toml").exists():
            path.mkdir(parents=True, exist_ok=True)
            write_config_file(path, {"postgres": {"port": self.ports[0] if self.ports else 5432}})
        return path

    def _initdb(self, data: Path, port: int) -> None:
        data.mkdir(mode=0o700, parents=True)
        if self.user:
            postgres._own(data, self.user)
            postgres._make_traversable(data)
        result = run_tool(
            [binaries.postgres_tool("initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C"],
            user=self.user,
        )
        _check(result, f"initdb {data.name}")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n".join([
                    "",
                    f"listen_addresses = '{HOST}'",
                    f"port = {port}",
                    "unix_socket_directories = ''",
                    "shared_preload_libraries = 'citus'",
                    f"citus.shard_count = {SHARD_COUNT}",
                    "max_connections = 200",
                    "shared_buffers = 64MB",
                    "fsync = off",
                    "log_min_messages = warning",
                    "",
                ])
            )

    def stop(self) -> None:
        """Stop every node that was started (immediate: the data is thrown away)."""
        for data in reversed(self.started):
            run_tool([binaries.postgres_tool("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], user=self.user)
        self.started.clear()

    # -- SQL on the nodes ------------------------------------------------------------------

    async def execute(self, sql: str, *, node: int = 0, database: str = "postgres") -> None:
        conn = await asyncpg.connect(host=HOST, port=self.ports[node], user=SUPERUSER, database=database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: object, node: int = 0, database: str = "postgres") -> list[asyncpg.Record]:
        conn = await asyncpg.connect(host=HOST, port=self.ports[node], user=SUPERUSER, database=database)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def create_database(self, name: str, owner: str, password: str, *, citus: bool = True) -> None:
        """``name`` on every node, owned by ``owner``, with the extension on the workers; on the
        coordinator too, and the nodes registered, when ``citus``."""
        for node in range(len(self.ports)):
            exists = await self.fetch("SELECT 1 FROM pg_roles WHERE rolname = $1", owner, node=node)
            verb = "ALTER" if exists else "CREATE"
            await self.execute(f"""{verb} ROLE "{owner}" LOGIN PASSWORD '{password.replace("'", "''")}'""", node=node)
            await self.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"', node=node)
            if node > 0:
                await self.execute("CREATE EXTENSION citus", node=node, database=name)
        if citus:
            await self.enable_citus(name)

    async def enable_citus(self, name: str) -> None:
        """The extension in the coordinator's ``name`` and the workers registered there."""
        await self.execute("CREATE EXTENSION IF NOT EXISTS citus", database=name)
        await self.execute(f"SELECT citus_set_coordinator_host('{HOST}', {self.coordinator_port})", database=name)
        for port in self.worker_ports:
            await self.execute(f"SELECT citus_add_node('{HOST}', {port})", database=name)

    def campus(self, name: str, *, citus: bool = True, migrated: bool = True) -> Database:
        """lmsd's Settings and Secrets for database ``name`` on the coordinator (a data dir of its
        own under the cluster's root), the database made on every node; migrated, with campus A
        and its admin, unless ``migrated`` is False."""
        data_dir = self.root / f"campus-{name}"
        data_dir.mkdir(parents=True)
        write_config_file(
            data_dir,
            {"campus": {"id": str(uuid.uuid4()), "name": "Campus A", "host": "a.example",
                        "admin_email": "admin@a.example"},
             "postgres": {"port": self.coordinator_port, "database": name}},
        )
        settings = load_settings(data_dir)
        secrets, _ = credentials.ensure(data_dir)
        asyncio.run(self.create_database(name, settings.postgres.user, secrets.postgres_password, citus=citus))
        if migrated:
            migrate.upgrade(settings, secrets)
            asyncio.run(initialise_campus(settings, secrets, ADMIN_PASSWORD))
        return Database(settings, secrets)
