"""`lmsd upgrade`: migrations applied with a backup first; a failing one is rolled back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from lmsd.db.migrate import MIGRATIONS
from tests.conftest import running_campus
from tests.ops.test_backup_restore import _seed, _snapshot
from tests.support import Campus, app_dsn

pytestmark = pytest.mark.slow

MIGRATION = '''
import sqlalchemy as sa
from alembic import op

revision = "29990101_0001"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("upgrade_probe", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("UPDATE users SET display_name = 'overwritten by a bad migration'")
    {tail}


def downgrade() -> None:
    op.drop_table("upgrade_probe")
'''


def _extra_migration(folder: Path, fail: bool) -> dict[str, str]:
    folder.mkdir()
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    tail = 'raise RuntimeError("deliberate failure in migration 29990101_0001")' if fail else "pass"
    (folder / "29990101_0001_probe.py").write_text(MIGRATION.format(head=head, tail=tail))
    return {"LMSD_POSTGRES__EXTRA_MIGRATIONS": json.dumps([str(folder)])}


@pytest.fixture(scope="module")
def campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One seeded campus for the module, in file order: the failing upgrade leaves it as it was,
    and the good one then upgrades it (scripts/test runs a module on one xdist worker)."""
    for c in running_campus(tmp_path_factory):
        asyncio.run(_seed(c))
        yield c


async def _tables(c: Campus) -> set[str]:
    conn = await asyncpg.connect(app_dsn(c))
    try:
        return {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        await conn.close()


def test_failing_migration_is_rolled_back_with_data_intact(campus: Campus, tmp_path: Path) -> None:
    before = asyncio.run(_snapshot(campus))
    env = _extra_migration(tmp_path / "bad", fail=True)
    result = campus.lmsd("upgrade", env=env)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "upgrade failed while running migrations" in message
    assert "deliberate failure" in message and "rolled back to the backup" in message
    assert len(message.splitlines()) == 1, message
    assert campus.lmsd("status").returncode == 0  # running again, as it was
    assert asyncio.run(_snapshot(campus)) == before
    assert "upgrade_probe" not in asyncio.run(_tables(campus))
    assert list((campus.data_dir / "backups").glob("lmsd-pre-upgrade-*.tar"))


def test_upgrade_applies_new_migrations_and_restarts(campus: Campus, tmp_path: Path) -> None:
    before = asyncio.run(_snapshot(campus))
    env = _extra_migration(tmp_path / "good", fail=False)
    result = campus.lmsd("upgrade", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "→ 29990101_0001" in result.stdout
    after = asyncio.run(_snapshot(campus))
    assert after["version"] == "29990101_0001"
    assert "upgrade_probe" in asyncio.run(_tables(campus))
    assert after["messages"] == before["messages"] and after["media"] == before["media"]
    assert campus.lmsd("status", env=env).returncode == 0
