"""Test support: free ports, a way to run the real `lmsd` CLI, campuses in temporary dirs."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ADMIN_PASSWORD = "correct-horse-battery-staple"

CITUS_WORKERS = 2
CITUS_SHARD_COUNT = 8  # Citus's 32 shards per table make installing slow on two cores; routing is the same


def on_citus() -> bool:
    """``LMSD_TEST_CITUS=1``: the suites run on Citus. The session ``database`` is a coordinator
    with two workers (tests/citus/cluster.py) and campuses install with ``--citus-workers 2``."""
    return os.environ.get("LMSD_TEST_CITUS", "") not in ("", "0")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int) -> int:
    """A base port such that base..base+size-1 are all free (random, to keep xdist workers apart).

    Below Linux's ephemeral range (32768-60999): the kernel hands those out to every outgoing
    connection and to servers bound to port 0, so a block chosen there can be taken between this
    check and the campus binding it."""
    rng = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little"))
    for _ in range(200):
        base = rng.randrange(20000, 32700 - size)
        if all(_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free port block")


@dataclass
class Campus:
    """An install in a temporary data dir, driven through the real CLI."""

    data_dir: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    # One API worker unless a test is about several (the runtime's own tests): each worker is a
    # Python process importing the whole API, a few seconds of CPU per install on 2 cores.
    api_workers: int = 1
    # With LMSD_TEST_CITUS=1 the campus runs a Citus cluster through the product (see install()).
    citus_workers: int = field(default_factory=lambda: CITUS_WORKERS if on_citus() else 0)

    def lmsd(self, *args: str, check: bool = False, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_lmsd("--data-dir", str(self.data_dir), *args, check=check, timeout=timeout, env={**self.env, **(env or {})})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def install_args(self) -> list[str]:
        p = self.ports
        return [
            "install", "--yes",
            "--campus-name", "Test University",
            "--admin-email", "admin@test.example",
            "--http-port", str(p["http"]),
            "--api-port", str(p["api"]),
            "--workers", str(self.api_workers),
            "--postgres-port", str(p["postgres"]),
            "--nats-port", str(p["nats"]),
            "--nats-monitor-port", str(p["nats_monitor"]),
            *(["--citus-workers", str(self.citus_workers)] if self.citus_workers else []),
        ]

    def install(self) -> subprocess.CompletedProcess[str]:
        if self.citus_workers and not (self.data_dir / "config.toml").exists():
            # The workers' ports of this campus's own block (not postgres.port + 20, which may be
            # another campus's), and fewer shards: set before install, as `lmsd config set` would.
            from lmsd.settings import write_config_file

            write_config_file(self.data_dir, {"postgres": {
                "citus_worker_port": self.ports["citus_workers"], "citus_shard_count": CITUS_SHARD_COUNT,
            }})
        return self.lmsd(*self.install_args(), env={"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD})


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSD_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    env.update(extra or {})
    return env


def run_lmsd(*args: str, check: bool = False, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "lmsd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"lmsd {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def new_campus(data_dir: Path, api_workers: int = 1) -> Campus:
    citus = CITUS_WORKERS if on_citus() else 0
    base = free_port_block(6 + citus)
    ports = {
        "http": base,
        "api": base + 1,  # workers on base+1, base+2
        "postgres": base + 3,
        "nats": base + 4,
        "nats_monitor": base + 5,
    }
    if citus:
        ports["citus_workers"] = base + 6  # the Citus workers on base+6, base+7
    return Campus(data_dir=data_dir, ports=ports, api_workers=api_workers)


def secrets_of(data_dir: Path) -> dict[str, str]:
    import tomllib

    return tomllib.loads((data_dir / "secrets" / "secrets.toml").read_text())


def app_dsn(c: Campus) -> str:
    s = secrets_of(c.data_dir)
    return f"postgresql://lmsd:{s['postgres_password']}@127.0.0.1:{c.ports['postgres']}/lmsd"


async def nats_connect(c: Campus):  # type: ignore[no-untyped-def]
    import nats

    s = secrets_of(c.data_dir)
    return await nats.connect(
        servers=[f"nats://127.0.0.1:{c.ports['nats']}"], user="lmsd", password=s["nats_password"],
        allow_reconnect=False, max_reconnect_attempts=1,
    )
