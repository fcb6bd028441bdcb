"""The whole embedded stack through the real CLI: install, status, restart on crash, down."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import running_campus
from tests.support import ADMIN_PASSWORD, Campus

pytestmark = pytest.mark.slow


def status(c: Campus) -> tuple[int, dict]:
    result = c.lmsd("status", "--json")
    return result.returncode, json.loads(result.stdout)


def component(report: dict, name: str) -> dict:
    return next(row for row in report["components"] if row["name"] == name)


def processes_of(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(data_dir) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One install for the module (not one per test), with two API workers behind the gateway:
    each test leaves the campus running and healthy for the next, in file order (scripts/test
    runs a module on one xdist worker)."""
    yield from running_campus(tmp_path_factory, api_workers=2)


def wait_for(predicate, timeout: float = 60, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_install_gives_a_healthy_campus_behind_the_gateway(campus: Campus) -> None:
    code, report = status(campus)
    assert code == 0, report
    assert report["healthy"] is True
    names = [row["name"] for row in report["components"]]
    assert names == ["postgres", "nats", "api-0", "api-1", "relay", "projector-0", "media-worker", "transcoder-0", "gateway"]
    for row in report["components"]:
        assert row["ok"] and row["pid"] and row["version"], row
        if row["name"] in ("relay", "projector-0", "media-worker", "transcoder-0"):  # probed through their heartbeat file
            assert row["detail"].startswith(("published", "consuming", "idle", "waiting for LMSD_")), row
        else:
            assert row["latency_ms"] > 0
    assert report["events"]["relay"]["backlog"] >= 0 and report["events"]["dead_letters"] == 0
    assert [c["name"] for c in report["events"]["consumers"]] == ["learning", "media", "transcode", "transcribe"]
    assert component(report, "postgres")["version"].startswith("16")
    assert "JetStream: 3 streams" in component(report, "nats")["detail"]

    # The portal and the API answer through the gateway; the admin can sign in.
    page = httpx.get(campus.url + "/", follow_redirects=True)  # signed out: the sign-in page
    assert page.status_code == 200 and page.url.path == "/login" and "Test University" in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    token = httpx.post(
        campus.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD}
    )
    assert token.status_code == 200, token.text
    me = httpx.get(campus.url + "/api/v1/me", headers={"authorization": f"Bearer {token.json()['access_token']}"})
    assert me.json()["role"] == "admin" and me.json()["email"] == "admin@test.example"
    # Bad input: wrong password and an unknown field get problem+json, not a crash.
    wrong = httpx.post(campus.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": "nope"})
    assert wrong.status_code == 401 and wrong.headers["content-type"].startswith("application/problem+json")
    extra = httpx.post(campus.url + "/api/v1/auth/login", json={"email": "a@b", "password": "x", "admin": True})
    assert extra.status_code == 400 and extra.headers["content-type"].startswith("application/problem+json")
    # Sign in through the portal's form: a session cookie that only HTTP can read.
    form = httpx.post(campus.url + "/login", data={"email": "admin@test.example", "password": ADMIN_PASSWORD})
    assert form.status_code == 303
    cookie = form.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    home = httpx.get(campus.url + "/", cookies=form.cookies, follow_redirects=True)
    assert home.status_code == 200 and home.url.path == "/my"
    profile = httpx.get(campus.url + "/profile", cookies=form.cookies)
    assert profile.status_code == 200 and "admin@test.example" in profile.text

    # Secrets are apart from the config, private, and never shown by `config show`.
    secrets_file = campus.data_dir / "secrets" / "secrets.toml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    config_text = (campus.data_dir / "config.toml").read_text()
    shown = campus.lmsd("config", "show").stdout
    import tomllib

    for value in tomllib.loads(secrets_file.read_text()).values():
        assert value not in config_text and value not in shown
    assert "********" in shown


def test_install_twice_is_safe_and_up_twice_says_running(campus: Campus) -> None:
    before = json.loads(campus.lmsd("config", "show", "--json").stdout)
    secrets_before = (campus.data_dir / "secrets" / "secrets.toml").read_bytes()
    again = campus.install()
    assert again.returncode == 0, again.stderr
    assert "already existed" in again.stdout
    after = json.loads(campus.lmsd("config", "show", "--json").stdout)
    assert after["campus"]["id"] == before["campus"]["id"]
    assert (campus.data_dir / "secrets" / "secrets.toml").read_bytes() == secrets_before

    up = campus.lmsd("up")
    assert up.returncode == 0 and "already running" in up.stdout
    assert status(campus)[0] == 0


@pytest.mark.parametrize("victim", ["postgres", "nats"])
def test_kill_9_is_restarted_and_counted(campus: Campus, victim: str) -> None:
    _, report = status(campus)
    pid = component(report, victim)["pid"]
    os.kill(pid, signal.SIGKILL)

    def recovered() -> dict | None:
        code, rep = status(campus)
        row = component(rep, victim)
        return rep if code == 0 and row["restarts"] == 1 and row["pid"] != pid else None

    report = wait_for(recovered, timeout=90)
    assert component(report, victim)["ok"]
    # The campus still works end to end after the restart.
    token = httpx.post(
        campus.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD}
    )
    assert token.status_code == 200


def test_down_is_graceful_and_leaves_no_process(campus: Campus) -> None:
    assert processes_of(campus.data_dir)
    down = campus.lmsd("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert processes_of(campus.data_dir) == []
    assert "database system is shut down" in (campus.data_dir / "logs" / "postgres.log").read_text()
    code, report = status(campus)
    assert code == 1 and report["healthy"] is False
    assert "not running" in component(report, "gateway")["detail"]
    # and it comes back
    up = campus.lmsd("up")
    assert up.returncode == 0, up.stderr
    assert status(campus)[0] == 0


def test_supervisor_killed_leaves_no_orphans(campus: Campus) -> None:
    pid = int((campus.data_dir / "run" / "supervisor.pid").read_text())
    children = [p for p in processes_of(campus.data_dir) if p.pid != pid]
    assert len(children) >= 4
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children), timeout=60)
    # A later `up` starts cleanly after the crash.
    up = campus.lmsd("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert status(campus)[0] == 0


def test_logs_per_component(campus: Campus) -> None:
    result = campus.lmsd("logs", "gateway", "-n", "200")
    assert result.returncode == 0 and "listening on" in result.stdout
    bad = campus.lmsd("logs", "nope")
    assert bad.returncode == 1 and "no log for 'nope'" in bad.stderr
