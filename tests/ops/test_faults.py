"""Bad input and faults before anything starts: nothing half-started, one clear line, exit 1."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import Campus, run_lmsd

pytestmark = pytest.mark.slow


def _no_process_for(data_dir: Path) -> bool:
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(data_dir) in part for part in proc.info["cmdline"] or []):
                return False
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return True


@pytest.mark.parametrize("which", ["postgres", "http"])
def test_port_in_use_names_port_and_component(fresh: Campus, which: str) -> None:
    port = fresh.ports[which]
    label = {"postgres": "PostgreSQL", "http": "gateway"}[which]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = fresh.install()
        assert result.returncode == 1
        assert f"port {port} ({label}) is already in use" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert _no_process_for(fresh.data_dir)
        assert not (fresh.data_dir / "run" / "supervisor.pid").exists()


def test_port_taken_after_install_stops_up_cleanly(campus: Campus) -> None:
    assert campus.lmsd("down").returncode == 0
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", campus.ports["nats"]))
        squatter.listen()
        result = campus.lmsd("up")
    assert result.returncode == 1
    assert f"port {campus.ports['nats']} (NATS) is already in use" in result.stderr
    assert _no_process_for(campus.data_dir)


def test_not_a_directory_and_not_installed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_lmsd("--data-dir", str(blocker / "data"), "install", "--yes")
    assert result.returncode == 1 and "cannot create data dir" in result.stderr
    for command in (["status"], ["up"], ["backup"], ["upgrade"]):
        result = run_lmsd("--data-dir", str(tmp_path / "empty"), *command)
        assert result.returncode == 1, command
        assert "run `lmsd install`" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_install_without_terminal_needs_yes(tmp_path: Path) -> None:
    result = run_lmsd("--data-dir", str(tmp_path / "d"), "install")
    assert result.returncode == 1 and "--yes" in result.stderr


def test_other_profiles_are_not_installed_here(tmp_path: Path) -> None:
    result = run_lmsd("--data-dir", str(tmp_path / "d"), "install", "--yes", "--profile", "helm")
    assert result.returncode == 1 and "helm profile" in result.stderr


def test_invalid_install_answers_write_nothing(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = run_lmsd("--data-dir", str(data), "install", "--yes", "--admin-email", "nope")
    assert result.returncode == 1 and "not an e-mail" in result.stderr
    assert not (data / "config.toml").exists()


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A real, tiny file system (tmpfs) so that 'disk full' and 'read-only' are not simulated."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_nearly_full_is_refused_up_front(small_mount: Path) -> None:
    result = run_lmsd("--data-dir", str(small_mount / "data"), "install", "--yes")
    assert result.returncode == 1
    assert "disk nearly full" in result.stderr and "MB free" in result.stderr


def test_disk_full_is_reported_as_such(small_mount: Path) -> None:
    filler = small_mount / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
    (small_mount / "data").mkdir(exist_ok=True)
    result = run_lmsd(
        "--data-dir", str(small_mount / "data"), "install", "--yes",
        env={"LMSD_RUNTIME__MIN_FREE_DISK_MB": "0"},
    )
    assert result.returncode == 1
    assert "disk full" in result.stderr, result.stderr


def test_read_only_data_dir(small_mount: Path) -> None:
    (small_mount / "data").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    result = run_lmsd("--data-dir", str(small_mount / "data"), "install", "--yes")
    assert result.returncode == 1
    assert "read-only" in result.stderr
