"""`lmsd install` without --yes asks its questions on a terminal (a real pty here)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ADMIN_PASSWORD, clean_env, new_campus

pytestmark = pytest.mark.slow


def _read_until(fd: int, wanted: str, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096).decode(errors="replace")
            except OSError:
                break
    assert wanted in seen, f"never saw {wanted!r}; got {seen[-500:]!r}"
    return seen


def test_questions_are_asked_and_answers_used(tmp_path: Path) -> None:
    c = new_campus(tmp_path / "data")
    master, slave = pty.openpty()
    args = [
        sys.executable, "-m", "lmsd", "--data-dir", str(c.data_dir), "install",
        "--api-port", str(c.ports["api"]), "--postgres-port", str(c.ports["postgres"]),
        "--nats-port", str(c.ports["nats"]), "--nats-monitor-port", str(c.ports["nats_monitor"]),
    ]
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                            env=clean_env({"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD}), close_fds=True)
    os.close(slave)
    try:
        for question, answer in [
            ("Campus name", "Université de Test"),
            ("Host name", "lms.test.example"),
            ("E-mail of the first administrator", "dean@test.example"),
            ("Port of the portal", str(c.ports["http"])),
        ]:
            _read_until(master, question)
            os.write(master, (answer + "\n").encode())
        out = _read_until(master, "Check health with", timeout=240)
        assert proc.wait(60) == 0, out
        assert "dean@test.example" in out
        shown = json.loads(c.lmsd("config", "show", "--json").stdout)
        assert shown["campus"]["name"] == "Université de Test" and shown["campus"]["host"] == "lms.test.example"
        assert c.lmsd("status").returncode == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        c.lmsd("down")
