"""A real PostgreSQL for API-level tests, without the whole stack: initdb + pg_ctl + migrations.

Much faster than installing a campus, so the domain suites can make many small checks.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.db import migrate
from lmsd.ops.install import initialise_campus
from lmsd.runtime import binaries, postgres, replica
from lmsd.runtime.process import run_tool
from lmsd.settings import Settings, load_settings, write_config_file
from tests.support import ADMIN_PASSWORD, free_port_block


@dataclass
class Database:
    settings: Settings
    secrets: Secrets

    def stop(self) -> None:
        run_tool(
            [binaries.postgres_tool("pg_ctl"), "-D", postgres.pgdata(self.settings), "-m", "immediate", "stop"],
            user=postgres.server_user(self.settings),
        )


def start_database(data_dir: Path, replicas: int = 0) -> Database:
    """The primary; with ``replicas``, configured for them (start each with `start_replica`)."""
    port = free_port_block(1 + replicas)
    data_dir.mkdir(parents=True, exist_ok=True)
    pg: dict[str, int] = {"port": port}
    if replicas:
        pg["replicas"] = replicas
    write_config_file(
        data_dir,
        {"campus": {"id": str(uuid.uuid4()), "name": "Campus A", "host": "a.example", "admin_email": "admin@a.example"},
         "postgres": pg},
    )
    settings = load_settings(data_dir)
    secrets, _ = credentials.ensure(data_dir)
    postgres.initdb(settings, secrets)
    postgres.write_config(settings)
    log = postgres.pgdata(settings) / "server.log"
    result = run_tool(
        [binaries.postgres_tool("pg_ctl"), "-D", postgres.pgdata(settings), "-w", "-l", log, "start"],
        user=postgres.server_user(settings),
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl start failed: {result.stderr}")
    asyncio.run(postgres.bootstrap(settings, secrets))
    migrate.upgrade(settings, secrets)
    asyncio.run(initialise_campus(settings, secrets, ADMIN_PASSWORD))
    return Database(settings, secrets)


def start_replica(db: Database, n: int = 1) -> None:
    """Replica n of a `start_database(..., replicas=n)` primary, built (first time) and started
    the way the embedded runtime does it: pg_basebackup -R from the running primary."""
    asyncio.run(replica.prepare(db.settings, db.secrets, n))
    data = replica.replica_dir(db.settings, n)
    result = run_tool(
        [binaries.postgres_tool("pg_ctl"), "-D", data, "-w", "-l", data / "server.log", "start"],
        user=postgres.server_user(db.settings),
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl start (replica {n}) failed: {result.stderr}")


def stop_replica(db: Database, n: int = 1) -> None:
    run_tool(
        [binaries.postgres_tool("pg_ctl"), "-D", replica.replica_dir(db.settings, n), "-m", "fast", "-w", "stop"],
        user=postgres.server_user(db.settings),
    )
