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
from lmsd.runtime import binaries, postgres
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


def start_database(data_dir: Path) -> Database:
    port = free_port_block(1)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_config_file(
        data_dir,
        {"campus": {"id": str(uuid.uuid4()), "name": "Campus A", "host": "a.example", "admin_email": "admin@a.example"},
         "postgres": {"port": port}},
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
