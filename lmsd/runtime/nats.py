"""NATS with JetStream for the embedded profile: loopback only, a password from the secrets,
its store under the data dir. The config file holds the password, so it is mode 0600.
Clients connect through :mod:`lmsd.events.connection`, to the address in ``nats.*``."""

from __future__ import annotations

import json
from pathlib import Path

from lmsd.credentials import Secrets, write_private
from lmsd.events.connection import NATS_USER
from lmsd.runtime import binaries
from lmsd.settings import Settings


def nats_dir(settings: Settings) -> Path:
    return settings.data_dir / "nats"


def store_dir(settings: Settings) -> Path:
    return nats_dir(settings) / "jetstream"


def config_file(settings: Settings) -> Path:
    return nats_dir(settings) / "nats.conf"


def write_config(settings: Settings, secrets: Secrets) -> Path:
    nats_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
    store_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"lmsd-{settings.campus.id[:8] or 'campus'}"
    # JSON strings are valid NATS config strings and escape whatever the path holds.
    text = "\n".join(
        [
            f"server_name: {json.dumps(name)}",
            f"listen: \"127.0.0.1:{settings.nats.port}\"",
            f"http: \"127.0.0.1:{settings.nats.monitor_port}\"",
            "jetstream {",
            f"  store_dir: {json.dumps(str(store_dir(settings)))}",
            f"  max_file_store: {settings.nats.max_store_mb}MB",
            "  max_memory_store: 256MB",
            "}",
            "authorization {",
            f"  user: {json.dumps(NATS_USER)}",
            f"  password: {json.dumps(secrets.nats_password)}",
            "}",
            "",
        ]
    )
    path = config_file(settings)
    write_private(path, text)
    return path


def server_argv(settings: Settings) -> list[str | Path]:
    return [binaries.nats_server(), "-c", config_file(settings)]
