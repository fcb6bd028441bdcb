"""A campus installed as a Citus cluster through the real CLI (`lmsd install --citus-workers 2`):
`lmsd status` shows the coordinator and each worker with its shards, the API works on the
distributed tables, a worker killed with -9 comes back, `lmsd db add-worker` grows the cluster
and moves shards onto the new worker while requests keep succeeding, a campus isolated to shards
of its own keeps working. One campus for the module, in file order. (A worker killed -9 under
learning-event load: the 100k-event fault test, tests/events/test_events_faults.py, run on Citus
by scripts/test's Citus pass.)"""

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

from tests.api import Person, course, person, text_lessons
from tests.citus import requires_citus
from tests.citus.campus import (
    citus_campus,
    course_codes,
    new_course,
    nodes,
    pginstall_without_citus,
    status,
    superuser,
    token,
    wait_healthy,
)
from tests.learning import admin_of, client, publish_and_enrol, wait_progress
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


async def _one_learner_with_a_course(c: httpx.AsyncClient) -> tuple[Person, str, list[str]]:
    """A learner enrolled in a published course of two text lessons: (learner, enrolment, lessons)."""
    root = await admin_of(c)
    teacher = await person(c, root, "instructor")  # type: ignore[arg-type]
    crs = await course(c, teacher, publish=False)  # type: ignore[arg-type]
    lessons = await text_lessons(c, teacher, crs["id"], body="text")  # type: ignore[arg-type]
    _, people, enrolments = await publish_and_enrol(c, root, teacher, crs["id"], 1)
    return people[0], enrolments[0], lessons


async def test_a_campus_isolated_to_its_own_shard_keeps_working(cluster: Campus) -> None:
    """``isolate_tenant_to_new_shard(..., 'CASCADE')`` on the coordinator gives campus A shards of
    its own in every colocated table; reads, writes and learning events go on through the API."""
    async with client(cluster) as c:
        root = await admin_of(c)
        campus_a = (await c.get("/api/v1/campus")).json()["id"]
        conn = await superuser(cluster)
        try:
            shard = await conn.fetchval(
                "SELECT isolate_tenant_to_new_shard('users', $1::text::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')",
                campus_a,
            )
            bounds = await conn.fetchrow("SELECT shardminvalue, shardmaxvalue FROM pg_dist_shard WHERE shardid = $1", shard)
            colocated = await conn.fetchval(
                "SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid) "
                "WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'users'::regclass) "
                "AND s.shardminvalue = $1 AND s.shardmaxvalue = $1",
                bounds["shardminvalue"],
            )
        finally:
            await conn.close()
        assert bounds["shardminvalue"] == bounds["shardmaxvalue"]  # one hash value: this campus alone
        assert colocated > 10  # every table colocated with users moved with it (CASCADE)

        # reads and writes of the isolated campus through the API
        created = await course(c, root)  # type: ignore[arg-type]
        r = await c.get("/api/v1/courses", headers=root.h, params={"limit": 100})
        assert r.status_code == 200 and created["id"] in {x["id"] for x in r.json()["items"]}, r.text
        learner, enrolment, lessons = await _one_learner_with_a_course(c)
        events = [
            {"id": str(uuid.uuid4()), "enrolment_id": enrolment, "type": "lesson_started", "lesson_id": lessons[i % 2]}
            for i in range(50)
        ]
        r = await c.post("/api/v1/learning/events", headers=learner.h, json={"events": events})
        assert r.status_code == 202, r.text
        await wait_progress(c, learner, enrolment, lambda p: p["events_applied"] == 1 + len(events), timeout=60)


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
