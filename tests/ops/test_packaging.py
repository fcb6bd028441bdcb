"""The package ships its Rust binaries, and the README's first command leaves a running campus."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support import clean_env, new_campus

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_wheel_carries_the_rust_binaries(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "-q"],
        check=True,
        env={**os.environ, "LMSD_SKIP_CARGO": "1"},  # built once by scripts/bootstrap
        timeout=600,
    )
    wheel = next(tmp_path.glob("lmsd-*.whl"))
    assert "linux_x86_64" in wheel.name or "manylinux" in wheel.name, wheel.name  # not a pure wheel
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert {"lmsd/_bin/lmsd-gateway", "lmsd/_bin/lmsd-projector", "lmsd/_bin/lmsd-transcoder"} <= set(names)
        assert "lmsd/db/migrations/versions/2026_11_25_0001_campuses_and_users.py" in names
        zf.extractall(site)
    binary = site / "lmsd" / "_bin" / "lmsd-gateway"
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    # An installed lmsd finds its binary inside the package, with no cargo and no checkout around.
    found = subprocess.run(
        [sys.executable, "-c", "from lmsd.runtime.binaries import rust_binary; print(rust_binary('lmsd-gateway'))"],
        cwd=tmp_path, env={**clean_env(), "PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )
    assert Path(found.stdout.strip()) == binary
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "lmsd-gateway 0.1.0"


def test_quick_start_command_leaves_a_running_campus(tmp_path: Path) -> None:
    c = new_campus(tmp_path / "data")
    args = [a for a in c.install_args() if a not in ("install", "--yes")]
    result = subprocess.run(
        [str(ROOT / "installer" / "install.sh"), *args],
        env=clean_env({"LMSD_DATA_DIR": str(c.data_dir)}),
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        url = re.search(r"Portal:\s+(\S+)", result.stdout)
        assert url and url.group(1) == f"http://127.0.0.1:{c.ports['http']}/"
        assert re.search(r"Password:\s+\S+\s+\(shown once", result.stdout)
        portal = httpx.get(url.group(1), follow_redirects=True)  # the portal's sign-in page
        assert portal.status_code == 200 and portal.url.path == "/login"
        assert c.lmsd("status").returncode == 0
    finally:
        c.lmsd("down")
