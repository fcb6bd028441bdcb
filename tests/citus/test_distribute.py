"""`lmsd db distribute`: a campus installed on plain PostgreSQL, with data made through the API,
moved onto Citus with two workers through the real CLI; the data is still there and the tables
are distributed. And the one-line refusals of `lmsd db` where it cannot work."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

from tests.citus import requires_citus
from tests.citus.campus import citus_campus, course_codes, new_course, nodes, pginstall_without_citus, token
from tests.support import ADMIN_PASSWORD, Campus, app_dsn, run_lmsd

pytestmark = requires_citus


def one_line_failure(result: object) -> str:
    assert getattr(result, "returncode", None) == 1, result
    lines = str(getattr(result, "stderr", "")).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


async def distributed_tables(c: Campus) -> int | None:
    """Tables in Citus's metadata; None without the extension (plain PostgreSQL)."""
    conn = await asyncpg.connect(app_dsn(c))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'"):
            return None
        return int(await conn.fetchval("SELECT count(*) FROM pg_dist_partition"))
    finally:
        await conn.close()


def test_db_commands_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    empty = run_lmsd("--data-dir", str(tmp_path / "none"), "db", "add-worker")
    assert "no campus is installed" in one_line_failure(empty)
    plain = tmp_path / "plain"
    run_lmsd("--data-dir", str(plain), "config", "set", "campus.name", "Plain", check=True)
    refused = run_lmsd("--data-dir", str(plain), "db", "add-worker")
    assert "runs on plain PostgreSQL" in one_line_failure(refused) and "lmsd db distribute" in refused.stderr
    bad = run_lmsd("--data-dir", str(plain), "db", "distribute", "--workers", "0")
    assert "--workers must be at least 1" in one_line_failure(bad)
    without = {"LMSD_POSTGRES__BIN_DIR": str(pginstall_without_citus(tmp_path / "pg"))}
    for command in (["db", "add-worker"], ["db", "distribute"]):
        result = run_lmsd("--data-dir", str(plain), *command, env=without)
        assert "Citus is not installed in the PostgreSQL lmsd runs" in one_line_failure(result)
    run_lmsd("--data-dir", str(plain), "config", "set", "postgres.citus_workers", "2", check=True)
    up = run_lmsd("--data-dir", str(plain), "up", env=without)
    assert "Citus is not installed" in one_line_failure(up)
    assert not (plain / "run" / "supervisor.pid").exists() and not (plain / "postgres-worker-1").exists()


def test_distribute_moves_a_campus_with_data_onto_citus(tmp_path: Path) -> None:
    c = citus_campus(tmp_path / "data")
    try:
        result = c.install()
        assert result.returncode == 0, result.stdout + result.stderr
        h = token(c)
        before = new_course(c, h)["code"]
        assert asyncio.run(distributed_tables(c)) is None
        grow = c.lmsd("db", "add-worker")
        assert "lmsd db distribute" in one_line_failure(grow)
        again = c.lmsd(*c.install_args(), "--citus-workers", "2", env={"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD})
        assert "installed on plain PostgreSQL" in one_line_failure(again)

        moved = c.lmsd("db", "distribute", "--workers", "2", timeout=600)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "runs on Citus with 2 workers" in moved.stdout
        assert (asyncio.run(distributed_tables(c)) or 0) > 0
        h = token(c)
        assert before in course_codes(c, h)
        after = new_course(c, h)["code"]
        assert {before, after} <= course_codes(c, h)
        report = json.loads(c.lmsd("status", "--json", timeout=60).stdout)
        rows = nodes(report)
        assert report["healthy"] and sorted(rows) == ["postgres", "postgres-worker-1", "postgres-worker-2"]
        assert all(rows[f"postgres-worker-{i}"]["shards"] > 0 for i in (1, 2)), rows
        rerun = c.lmsd("db", "distribute", "--workers", "2", timeout=600)  # idempotent: nothing left to move
        assert rerun.returncode == 0 and "0 tables distributed" in rerun.stdout, rerun.stdout + rerun.stderr
    finally:
        c.lmsd("down", timeout=180)
