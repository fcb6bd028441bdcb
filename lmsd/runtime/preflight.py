"""Checks made before anything starts, so that a failure leaves nothing half-started."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from pathlib import Path

from lmsd.errors import LmsdError, OperationFailed
from lmsd.runtime import citus
from lmsd.settings import Settings


def check_data_dir(data_dir: Path) -> None:
    """The data dir exists (or can be made) and this user can write into it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise OperationFailed(f"cannot create data dir {data_dir}: permission denied") from None
    except OSError as exc:
        raise OperationFailed(f"cannot create data dir {data_dir}: {exc.strerror}") from None
    if not data_dir.is_dir():
        raise OperationFailed(f"data dir {data_dir} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-test-") as handle:
            handle.write(b"x" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except PermissionError:
        raise OperationFailed(f"data dir {data_dir} is not writable by this user") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OperationFailed(f"disk full: no space left in data dir {data_dir}") from None
        if exc.errno == errno.EROFS:
            raise OperationFailed(f"data dir {data_dir} is on a read-only file system") from None
        raise OperationFailed(f"data dir {data_dir} is not usable: {exc.strerror}") from None


def check_disk(data_dir: Path, min_free_mb: int) -> None:
    free_mb = shutil.disk_usage(data_dir).free // (1024 * 1024)
    if free_mb < min_free_mb:
        raise OperationFailed(
            f"disk nearly full: {free_mb} MB free at {data_dir}, lmsd needs at least {min_free_mb} MB"
            " (runtime.min_free_disk_mb)"
        )


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(settings: Settings) -> None:
    for component, port in settings.ports():
        host = settings.gateway.bind if component == "gateway" else "127.0.0.1"
        if port_in_use(host, port):
            raise OperationFailed(
                f"port {port} ({component}) is already in use by another program;"
                f" free it or choose another port with `lmsd config set`"
            )


def check_citus(settings: Settings) -> None:
    """With Citus workers, the PostgreSQL lmsd runs must have the extension."""
    if settings.postgres.citus_enabled:
        citus.check_extension(settings)


def check_private_files(settings: Settings) -> None:
    """Files of secrets the settings name (the LRS credentials) are readable and private: refused
    before anything starts, by the forwarder's own rule, not once the whole stack is up."""
    from lmsd.learning.forwarder import read_credentials  # when it runs: `lmsd down` needs none of it

    try:
        read_credentials(settings.events.xapi_lrs_credentials_file)
    except LmsdError as exc:
        raise OperationFailed(str(exc)) from None


def check_all(settings: Settings) -> None:
    check_data_dir(settings.data_dir)
    check_disk(settings.data_dir, settings.runtime.min_free_disk_mb)
    check_private_files(settings)
    check_citus(settings)
    check_ports(settings)
