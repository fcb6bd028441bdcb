"""Helpers of the Citus cluster suites: a campus made through the real CLI with Citus's settings,
its `lmsd status` rows, the API calls they make, a PostgreSQL without Citus, which worker holds a
campus's shards, and the 503 a request gets while that worker is away."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from lmsd.runtime.binaries import postgres_bin_dir
from tests.api import PASSWORD, Person, login
from tests.support import ADMIN_PASSWORD, Campus, free_port_block, new_campus, secrets_of

SHARD_COUNT = "8"  # Citus's 32 shards per table make installing slow on two cores; routing is the same


def citus_campus(data_dir: Path) -> Campus:
    """A campus not installed yet whose workers (when it gets some) have ports of their own."""
    c = new_campus(data_dir)
    c.ports["citus_workers"] = free_port_block(4)
    c.lmsd("config", "set", "postgres.citus_worker_port", str(c.ports["citus_workers"]), check=True)
    c.lmsd("config", "set", "postgres.citus_shard_count", SHARD_COUNT, check=True)
    return c


def status(c: Campus) -> dict[str, Any]:
    result = c.lmsd("status", "--json", timeout=60)
    assert result.stdout, f"lmsd status --json printed nothing (exit {result.returncode}): {result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def nodes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report["components"] if r["name"] == "postgres" or r["name"].startswith("postgres-worker-")}


def token(c: Campus) -> dict[str, str]:
    r = httpx.post(c.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def new_course(c: Campus, h: dict[str, str]) -> dict[str, Any]:
    code = f"C{uuid.uuid4().hex[:8]}"
    r = httpx.post(c.url + "/api/v1/courses", headers=h, json={"code": code, "title": "Linear Algebra", "self_enrol": True}, timeout=30)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def course_codes(c: Campus, h: dict[str, str]) -> set[str]:
    r = httpx.get(c.url + "/api/v1/courses", headers=h, params={"status": "draft", "limit": 100}, timeout=30)
    assert r.status_code == 200, r.text
    return {item["code"] for item in r.json()["items"]}


def wait_healthy(c: Campus, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    report = status(c)
    while not report["healthy"] and time.monotonic() < deadline:
        time.sleep(1)
        report = status(c)
    assert report["healthy"], json.dumps(nodes(report), indent=1)
    return report


def pginstall_without_citus(root: Path) -> Path:
    """A PostgreSQL like the wheel's but without Citus: bin copied (PostgreSQL finds lib and share
    next to its own real path), every other file a link, citus* left out. Returns the bin dir."""
    src = postgres_bin_dir().parent
    shutil.copytree(src / "bin", root / "bin", symlinks=True)

    def link_tree(rel: str, depth: int) -> None:
        (root / rel).mkdir(parents=True)
        for entry in (src / rel).iterdir():
            if entry.name.startswith("citus"):
                continue
            if depth and entry.is_dir() and not entry.is_symlink():
                link_tree(f"{rel}/{entry.name}", depth - 1)
            else:
                (root / rel / entry.name).symlink_to(entry)

    link_tree("lib", 1)
    link_tree("share", 2)
    return root / "bin"


async def superuser(c: Campus) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=c.ports["postgres"], user="postgres", database="lmsd",
        password=secrets_of(c.data_dir)["postgres_superuser_password"],
    )


async def worker_of(c: Campus, campus_id: str) -> str:
    """The component name of the worker that holds ``campus_id``'s shard of ``users`` (and of
    every table colocated with it)."""
    conn = await superuser(c)
    try:
        port = await conn.fetchval(
            "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
            "WHERE p.shardid = get_shard_id_for_distribution_column('users', $1::text::uuid)",
            campus_id,
        )
    finally:
        await conn.close()
    return f"postgres-worker-{int(port) - c.ports['citus_workers'] + 1}"


async def campus_on_other_worker(c: httpx.AsyncClient, cluster: Campus, root: Person, busy: str) -> Person:
    """The admin of a new campus whose shards are not on worker ``busy`` (campuses are made until
    the hash of one's id lands on the other worker)."""
    for _ in range(12):
        host = f"b-{uuid.uuid4().hex[:6]}.example"
        email = f"admin@{host}"
        r = await c.post("/api/v1/campuses", headers=root.h, json={"name": "Campus B", "host": host, "admin_email": email, "admin_password": PASSWORD})
        assert r.status_code == 201, r.text
        campus_id = r.json()["id"]
        if await worker_of(cluster, campus_id) != busy:
            tok = await login(c, email, PASSWORD, campus_id)  # type: ignore[arg-type]
            return Person("", email, tok["access_token"], "admin")
    raise AssertionError(f"twelve campuses, all on {busy}")


def is_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, f"{r.status_code} {r.text[:500]}"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    assert body["status"] == 503 and body["code"] == "database.unavailable", body
    assert "remote node" not in json.dumps(body)  # nothing internal in a 5xx body
