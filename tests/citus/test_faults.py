"""Faults of a campus on Citus, through the real CLI (`lmsd install --citus-workers 2`), one campus
for the module, in file order:

- the worker that holds campus A's shards is killed with -9 while learning events are sent through
  the API (6,000 events: the plain fault test's 100k would take minutes on Citus's extra hop): the
  requests that touch its shards get a 503 problem+json with Retry-After at once (not a 500, not a
  hang), a campus whose shards are on the other worker keeps answering, and once the supervisor
  has restarted the worker every batch answered with 2xx is applied (progress counts match), none
  dead-lettered;
- campus A isolated to shards of its own (``isolate_tenant_to_new_shard(..., 'CASCADE')`` on the
  coordinator) keeps working: reads and writes through the API, events applied.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api import PASSWORD, Person, course, login, person
from tests.citus import requires_citus
from tests.citus.campus import citus_campus, nodes, status, wait_healthy
from tests.learning import admin_of, client, publish_and_enrol
from tests.support import ADMIN_PASSWORD, Campus, secrets_of

pytestmark = [requires_citus, pytest.mark.slow]

TOTAL = 6000
BATCH = 250
LEARNERS = 6
KILL_AFTER = 8  # batches sent before the worker is killed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    c = citus_campus(tmp_path_factory.mktemp("faults") / "data")
    c.citus_workers = 2
    result = c.lmsd(*c.install_args(), env={"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert result.returncode == 0, result.stdout + result.stderr
    yield c
    c.lmsd("down", timeout=180)


@dataclass
class Learning:
    learners: list[Person]
    enrolments: list[str]
    lessons: list[str]


async def _learning(c: httpx.AsyncClient, learners: int) -> Learning:
    """A published course with two text lessons and ``learners`` enrolled in it."""
    root = await admin_of(c)
    teacher = await person(c, root, "instructor")  # type: ignore[arg-type]
    crs = await course(c, teacher, publish=False)  # type: ignore[arg-type]
    module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "Week 1"})).json()
    lessons = []
    for title in ("Intro", "More"):
        r = await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json={"title": title, "body": "text"})
        assert r.status_code == 201, r.text
        lessons.append(r.json()["id"])
    _, people, enrolments = await publish_and_enrol(c, root, teacher, crs["id"], learners)
    return Learning(people, enrolments, lessons)


def _batch(s: Learning, run: uuid.UUID, n: int) -> list[dict[str, Any]]:
    """Batch n, every event with the client's own id: sent again after a 503, nothing is doubled."""
    enrolment = s.enrolments[n % len(s.enrolments)]
    return [
        {"id": str(uuid.uuid5(run, f"{n}:{i}")), "enrolment_id": enrolment,
         "type": "lesson_started" if i % 2 else "lesson_completed", "lesson_id": s.lessons[i % 2]}
        for i in range(BATCH)
    ]


async def _superuser(c: Campus) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=c.ports["postgres"], user="postgres", database="lmsd",
        password=secrets_of(c.data_dir)["postgres_superuser_password"],
    )


async def _worker_of(c: Campus, campus_id: str) -> str:
    """The component name of the worker that holds ``campus_id``'s shard of ``users`` (and of
    every table colocated with it)."""
    conn = await _superuser(c)
    try:
        port = await conn.fetchval(
            "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
            "WHERE p.shardid = get_shard_id_for_distribution_column('users', $1::text::uuid)",
            campus_id,
        )
    finally:
        await conn.close()
    return f"postgres-worker-{int(port) - c.ports['citus_workers'] + 1}"


async def _campus_on_other_worker(c: httpx.AsyncClient, cluster: Campus, root: Person, busy: str) -> Person:
    """The admin of a new campus whose shards are not on worker ``busy`` (campuses are made until
    the hash of one's id lands on the other worker)."""
    for _ in range(12):
        host = f"b-{uuid.uuid4().hex[:6]}.example"
        email = f"admin@{host}"
        r = await c.post("/api/v1/campuses", headers=root.h, json={"name": "Campus B", "host": host, "admin_email": email, "admin_password": PASSWORD})
        assert r.status_code == 201, r.text
        campus_id = r.json()["id"]
        if await _worker_of(cluster, campus_id) != busy:
            tok = await login(c, email, PASSWORD, campus_id)  # type: ignore[arg-type]
            return Person("", email, tok["access_token"], "admin")
    raise AssertionError(f"twelve campuses, all on {busy}")


async def _post(c: httpx.AsyncClient, who: Person, events: list[dict[str, Any]]) -> httpx.Response:
    while True:
        r = await c.post("/api/v1/learning/events", headers=who.h, json={"events": events})
        if r.status_code != 429:  # the gateway's write budget: wait as told
            return r
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))


def _is_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, f"{r.status_code} {r.text[:500]}"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    assert body["status"] == 503 and body["code"] == "database.unavailable", body
    assert "remote node" not in json.dumps(body)  # nothing internal in a 5xx body


async def _applied(c: httpx.AsyncClient, s: Learning, expected: dict[str, int], timeout: float = 180) -> None:
    """Every enrolment's progress counts ``expected`` events (its enrolment_created included)."""
    deadline = time.monotonic() + timeout
    got: dict[str, int] = {}
    while time.monotonic() < deadline:
        for who, enrolment in zip(s.learners, s.enrolments, strict=True):
            r = await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=who.h)
            if r.status_code == 200:
                got[enrolment] = r.json()["events_applied"]
        if got == expected:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"progress {got} != sent {expected}")


def _dead_letters(c: Campus) -> int:
    out = c.lmsd("events", "status", "--json", timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return int(json.loads(out.stdout)["dead_letters"])


async def test_a_worker_killed_under_event_load_answers_503_and_loses_nothing(cluster: Campus) -> None:
    wait_healthy(cluster)
    async with client(cluster) as c:
        s = await _learning(c, LEARNERS)
        campus_a = (await c.get("/api/v1/campus")).json()["id"]
        victim = await _worker_of(cluster, campus_a)
        other = await _campus_on_other_worker(c, cluster, await admin_of(c), victim)
        run = uuid.uuid4()
        batches = TOTAL // BATCH
        sent = {e: 1 for e in s.enrolments}  # enrolment_created
        refused = 0
        for n in range(batches):
            who, events = s.learners[n % LEARNERS], _batch(s, run, n)
            if n == KILL_AFTER:
                before = nodes(status(cluster))[victim]
                os.kill(before["pid"], signal.SIGKILL)
                started = time.monotonic()
                r = await _post(c, who, events)
                assert time.monotonic() - started < 10, "the request waited for the dead worker"
                _is_unavailable(r)
                refused += 1
                # a campus whose shards are on the other worker is served meanwhile
                assert (await c.get("/api/v1/courses", headers=other.h)).status_code == 200
            while (r := await _post(c, who, events)).status_code != 202:  # the same events again
                _is_unavailable(r)
                refused += 1
                await asyncio.sleep(0.5)
            assert r.json()["accepted"] == BATCH
            sent[events[0]["enrolment_id"]] += BATCH
        assert refused >= 1
        after = nodes(wait_healthy(cluster))[victim]
        assert after["restarts"] > before["restarts"] and after["pid"] != before["pid"]
        await _applied(c, s, sent)
    assert _dead_letters(cluster) == 0


async def test_a_campus_isolated_to_its_own_shard_keeps_working(cluster: Campus) -> None:
    async with client(cluster) as c:
        root = await admin_of(c)
        campus_a = (await c.get("/api/v1/campus")).json()["id"]
        conn = await _superuser(cluster)
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
        s = await _learning(c, 1)
        events = _batch(s, uuid.uuid4(), 0)
        r = await _post(c, s.learners[0], events)
        assert r.status_code == 202, r.text
        await _applied(c, s, {s.enrolments[0]: 1 + BATCH}, timeout=60)
