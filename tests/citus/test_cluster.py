"""A campus installed as a Citus cluster through the real CLI (`lmsd install --citus-workers 2`):
`lmsd status` shows the coordinator and each worker with its shards, the API works on the
distributed tables, a worker killed with -9 comes back, `lmsd db add-worker` grows the cluster
and moves shards onto the new worker while requests keep succeeding. One campus for the module."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.citus import requires_citus
from tests.citus.campus import (
    citus_campus,
    course_codes,
    new_course,
    nodes,
    pginstall_without_citus,
    status,
    token,
    wait_healthy,
)
from tests.support import ADMIN_PASSWORD, Campus, new_campus

pytestmark = requires_citus

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    c = citus_campus(tmp_path_factory.mktemp("cluster") / "data")
    result = c.lmsd(*c.install_args(), "--citus-workers", "2", env={"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert result.returncode == 0, result.stdout + result.stderr
    yield c
    c.lmsd("down", timeout=180)


def test_status_lists_the_coordinator_and_each_worker_with_its_shards(cluster: Campus) -> None:
    report = wait_healthy(cluster)
    rows = nodes(report)
    names = [r["name"] for r in report["components"]][:3]
    assert names == ["postgres", "postgres-worker-1", "postgres-worker-2"]  # the coordinator first
    assert rows["postgres"]["label"] == "PostgreSQL coordinator"
    for i in (1, 2):
        worker = rows[f"postgres-worker-{i}"]
        assert worker["ok"] and worker["state"] == "running" and worker["required"]
        assert worker["shards"] > 0 and worker["shard_bytes"] > 0, worker
        assert f"{worker['shards']} shards" in worker["detail"]
    table = cluster.lmsd("status", timeout=60)
    assert table.returncode == 0 and "PostgreSQL worker 2" in table.stdout and "shards" in table.stdout
    h = token(cluster)
    created = new_course(cluster, h)
    assert created["code"] in course_codes(cluster, h)


def test_a_worker_killed_with_9_is_restarted(cluster: Campus) -> None:
    before = nodes(wait_healthy(cluster))["postgres-worker-1"]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 90
    while True:
        after = nodes(status(cluster))["postgres-worker-1"]
        if after["ok"] and after["restarts"] > before["restarts"] and after["pid"] != before["pid"]:
            break
        assert time.monotonic() < deadline, after
        time.sleep(1)
    wait_healthy(cluster)
    h = token(cluster)
    assert new_course(cluster, h)["code"] in course_codes(cluster, h)


def test_add_worker_rebalances_while_the_api_serves(cluster: Campus) -> None:
    h = token(cluster)
    for _ in range(3):
        new_course(cluster, h)
    failures: list[str] = []
    served = 0
    outcome: dict[str, Any] = {}

    def grow() -> None:
        outcome["result"] = cluster.lmsd("db", "add-worker", timeout=600)

    grower = threading.Thread(target=grow)
    grower.start()
    with httpx.Client(base_url=cluster.url, headers=h, timeout=30) as client:
        while grower.is_alive():
            r = client.get("/api/v1/courses", params={"limit": 20})
            w = client.post("/api/v1/courses", json={"code": f"R{uuid.uuid4().hex[:8]}", "title": "During the move", "self_enrol": True})
            served += 2
            failures += [f"{x.request.method} {x.status_code} {x.text[:200]}" for x in (r, w) if x.status_code >= 400]
            time.sleep(0.1)
    grower.join()
    result = outcome["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rebalancing:" in result.stdout and "Worker 3" in result.stdout
    assert served > 10 and failures == []
    report = wait_healthy(cluster)
    third = nodes(report)["postgres-worker-3"]
    assert third["ok"] and third["shards"] > 0, third
    assert "citus_workers = 3" in (cluster.data_dir / "config.toml").read_text()


def test_install_without_citus_says_where_it_looked_and_starts_nothing(tmp_path: Path) -> None:
    bin_dir = pginstall_without_citus(tmp_path / "pg")
    c = new_campus(tmp_path / "data")
    result = c.lmsd(*c.install_args(), "--citus-workers", "2", env={"LMSD_POSTGRES__BIN_DIR": str(bin_dir)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"no citus.so in {tmp_path / 'pg' / 'lib' / 'postgresql'}" in lines[0]
    assert "Citus Data's packages for PostgreSQL 16" in lines[0] and "postgres.bin_dir" in lines[0]
    made = sorted(p.name for p in c.data_dir.iterdir()) if c.data_dir.exists() else []
    assert made == [], made  # no config, no cluster, nothing running
