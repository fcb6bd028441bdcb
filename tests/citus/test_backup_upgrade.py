"""`lmsd backup`, `lmsd restore` and `lmsd upgrade` on a Citus campus (coordinator + 2 workers),
through the real CLI: a backup of the running cluster restored onto an empty data dir gives the
same rows through the coordinator and the same shards on the workers; a backup of the stopped
cluster restored over it with --force; a failing migration rolled back with the data intact, then a good
one applied on every node; archives that cannot be restored refused in one line. One campus for
the module, in file order (scripts/test keeps a module on one xdist worker)."""

from __future__ import annotations

import asyncio
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from lmsd.db.migrate import MIGRATIONS
from tests.citus import requires_citus
from tests.citus.campus import citus_campus, course_codes, new_course, nodes, token, wait_healthy
from tests.ops.test_backup_restore import seed_learners
from tests.support import ADMIN_PASSWORD, Campus, app_dsn, secrets_of

pytestmark = [requires_citus, pytest.mark.slow, pytest.mark.timeout(1500)]  # installs, restores, upgrades
WORKERS = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    c = citus_campus(tmp_path_factory.mktemp("backup") / "data")
    result = c.lmsd(*c.install_args(), "--citus-workers", str(WORKERS), env={"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert result.returncode == 0, result.stdout + result.stderr
    asyncio.run(seed_learners(c, 200))
    h = token(c)
    for _ in range(3):
        new_course(c, h)
    yield c
    c.lmsd("down", timeout=180)


def _superuser_dsn(c: Campus) -> str:
    password = secrets_of(c.data_dir)["postgres_superuser_password"]
    return f"postgresql://postgres:{password}@127.0.0.1:{c.ports['postgres']}/lmsd"


def _worker_dsn(c: Campus, i: int) -> str:
    return app_dsn(c).replace(f":{c.ports['postgres']}/", f":{c.ports['citus_workers'] + i - 1}/")


async def _snapshot(c: Campus) -> dict[str, Any]:
    """The rows through the coordinator, the shard placements per node and the users rows each
    worker holds in its shards."""
    conn = await asyncpg.connect(app_dsn(c))
    try:
        users = [tuple(r) for r in await conn.fetch("SELECT * FROM users ORDER BY id")]
        courses = [tuple(r) for r in await conn.fetch("SELECT id, code, title, status FROM courses ORDER BY id")]
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    superuser = await asyncpg.connect(_superuser_dsn(c))
    try:
        placements = dict(await superuser.fetch("SELECT nodeport, count(*) FROM citus_shards GROUP BY nodeport"))
    finally:
        await superuser.close()
    on_workers = []
    for i in range(1, WORKERS + 1):
        worker = await asyncpg.connect(_worker_dsn(c, i))
        try:
            await worker.execute("SET citus.override_table_visibility TO off")
            shards = await worker.fetch("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ '^users_[0-9]+$'")
            # Rows in every users shard of the worker (shards are hidden from pg_class unless asked).
            on_workers.append(sum([int(await worker.fetchval(f'SELECT count(*) FROM "{r[0]}"')) for r in shards]))
        finally:
            await worker.close()
    return {"users": users, "courses": courses, "version": version, "placements": placements, "on_workers": on_workers}


def _one_line(result: Any) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return str(lines[0])


def test_backups_running_and_stopped_restored_empty_and_forced(cluster: Campus, tmp_path: Path) -> None:
    """A backup of the running cluster restored onto an empty data dir, then a backup of the
    stopped cluster restored over it with --force: each gives the rows as they were at its backup.
    (One test, so that the cluster is stopped and started as few times as possible.)"""
    before = asyncio.run(_snapshot(cluster))
    assert len(before["users"]) == 201 and len(before["courses"]) == 3
    # One campus is one shard group: its users are all on one worker's shard; every worker has shards.
    assert sorted(before["on_workers"]) == [0, 201], before["on_workers"]
    assert len(before["placements"]) == 3 and all(n > 0 for n in before["placements"].values())

    archive = tmp_path / "cluster.tar"
    result = cluster.lmsd("backup", "--to", str(archive), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        members = set(tar.getnames())
    topology = manifest["topology"]
    assert topology["citus_workers"] == WORKERS and topology["nodes"] == ["postgres", "postgres-worker-1", "postgres-worker-2"]
    assert topology["restore_point"].startswith("lmsd-")
    for node in topology["nodes"]:
        assert f"db/citus/{node}/base.tar.gz" in members and any(m.startswith(f"db/citus/{node}/wal/") for m in members)
    assert "db/lmsd.dump" not in members
    assert asyncio.run(_snapshot(cluster)) == before  # it kept running and lost nothing
    wait_healthy(cluster)

    # An archive whose topology is not what it would be restored into is refused before anything changes.
    elsewhere = Campus(data_dir=tmp_path / "elsewhere", ports=cluster.ports)
    refused = elsewhere.lmsd("restore", str(archive), env={"LMSD_POSTGRES__CITUS_WORKERS": "1"})
    line = _one_line(refused)
    assert "holds a Citus cluster with 2 workers" in line and "into 1 Citus workers" in line, line
    assert not elsewhere.data_dir.exists()

    later = new_course(cluster, token(cluster))["code"]  # after the running backup, before the stopped one
    at_stop = asyncio.run(_snapshot(cluster))
    assert cluster.lmsd("down", timeout=180).returncode == 0
    offline = tmp_path / "offline.tar"
    result = cluster.lmsd("backup", "--to", str(offline), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    restored = Campus(data_dir=tmp_path / "restored", ports=cluster.ports)
    try:
        result = restored.lmsd("restore", str(archive), timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        assert asyncio.run(_snapshot(restored)) == before
        report = wait_healthy(restored)
        rows = nodes(report)
        assert sorted(rows) == ["postgres", "postgres-worker-1", "postgres-worker-2"]
        assert all(rows[f"postgres-worker-{i}"]["shards"] > 0 for i in (1, 2)), rows
        assert not (restored.data_dir / "restore-wal").exists()
        h = token(restored)
        codes = course_codes(restored, h)
        assert {c[1] for c in before["courses"]} <= codes and later not in codes
        assert new_course(restored, h)["code"] in course_codes(restored, h)  # it takes writes

        # A corrupt copy is refused in one line, even with --force, and the campus is untouched.
        corrupt = tmp_path / "corrupt.tar"
        raw = bytearray(archive.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        corrupt.write_bytes(bytes(raw))
        assert "not a usable lmsd backup" in _one_line(restored.lmsd("restore", "--force", str(corrupt)))
        wait_healthy(restored)
    finally:
        restored.lmsd("down", timeout=180)

    # The stopped cluster's backup over the campus it was taken of: --force keeps the old data dir.
    result = cluster.lmsd("restore", "--force", str(offline), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept in" in result.stdout
    assert asyncio.run(_snapshot(cluster)) == at_stop
    assert later in course_codes(cluster, token(cluster))
    assert list(cluster.data_dir.parent.glob("data.pre-restore-*"))
    wait_healthy(cluster)


MIGRATION = '''
import sqlalchemy as sa
from alembic import op

revision = "29990101_0001"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    op.execute("UPDATE users SET display_name = 'overwritten by a bad migration'")
    op.add_column("courses", sa.Column("upgrade_probe", sa.Text, nullable=True))
    {tail}


def downgrade() -> None:
    op.drop_column("courses", "upgrade_probe")
'''


def _extra_migration(folder: Path, fail: bool) -> dict[str, str]:
    folder.mkdir()
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    tail = 'raise RuntimeError("deliberate failure in migration 29990101_0001")' if fail else "pass"
    (folder / "29990101_0001_probe.py").write_text(MIGRATION.format(head=head, tail=tail))
    return {"LMSD_POSTGRES__EXTRA_MIGRATIONS": json.dumps([str(folder)])}


async def _probe_columns(c: Campus) -> list[bool]:
    """Whether courses has the probe column: on the coordinator, then on each worker's shards."""
    found = []
    for dsn in [app_dsn(c), *(_worker_dsn(c, i) for i in range(1, WORKERS + 1))]:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET citus.override_table_visibility TO off")
            found.append(
                bool(await conn.fetchval(
                    "SELECT count(*) FROM information_schema.columns WHERE column_name = 'upgrade_probe'"
                    " AND table_name ~ '^courses(_[0-9]+)?$'"
                ))
            )
        finally:
            await conn.close()
    return found


def test_failing_migration_is_rolled_back_with_data_intact(cluster: Campus, tmp_path: Path) -> None:
    before = asyncio.run(_snapshot(cluster))
    result = cluster.lmsd("upgrade", env=_extra_migration(tmp_path / "bad", fail=True), timeout=1200)
    message = _one_line(result)
    assert "upgrade failed while running migrations" in message and "deliberate failure" in message
    assert "rolled back to the backup" in message
    assert asyncio.run(_snapshot(cluster)) == before
    assert asyncio.run(_probe_columns(cluster)) == [False, False, False]
    report = wait_healthy(cluster)
    assert all(r["ok"] for r in nodes(report).values())


def test_upgrade_applies_a_migration_through_the_coordinator(cluster: Campus, tmp_path: Path) -> None:
    before = asyncio.run(_snapshot(cluster))
    env = _extra_migration(tmp_path / "good", fail=False)
    result = cluster.lmsd("upgrade", env=env, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "→ 29990101_0001" in result.stdout
    after = asyncio.run(_snapshot(cluster))
    assert after["version"] == "29990101_0001" and after["courses"] == before["courses"]
    assert after["placements"] == before["placements"] and after["on_workers"] == before["on_workers"]
    assert asyncio.run(_probe_columns(cluster)) == [True, True, True]  # the DDL reached every shard
    report = json.loads(cluster.lmsd("status", "--json", env=env, timeout=60).stdout)
    coordinator = nodes(report)["postgres"]
    assert report["healthy"] and "read replicas: not supported with Citus yet" in coordinator["detail"]
    assert secrets_of(cluster.data_dir)  # the secrets survived two restores
