"""Backup while running, restore onto an empty data dir: identical data. Bad archives refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tarfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support import ADMIN_PASSWORD, Campus, app_dsn, nats_connect

pytestmark = pytest.mark.slow
EVENTS = 200


async def seed_learners(c: Campus, count: int) -> None:
    """``count`` learners straight into the campus's database (names with non-ASCII characters)."""
    conn = await asyncpg.connect(app_dsn(c))
    try:
        campus_id = await conn.fetchval("SELECT id FROM campuses")
        await conn.executemany(
            "INSERT INTO users (id, campus_id, email, display_name, password_hash, role)"
            " VALUES ($1, $2, $3, $4, 'x', 'learner')",
            [(uuid.uuid4(), campus_id, f"learner{i}@test.example", f"Learner “{i}” ✓") for i in range(count)],
        )
    finally:
        await conn.close()


async def _seed(c: Campus) -> None:
    await seed_learners(c, 500)
    nc = await nats_connect(c)
    try:
        js = nc.jetstream()
        for i in range(EVENTS):
            await js.publish(
                f"lmsd.test.lesson.{i % 7}.completed", json.dumps({"n": i}).encode(), headers={"Nats-Msg-Id": f"m{i}"}
            )
    finally:
        await nc.close()
    media = c.data_dir / "media" / "videos" / "lecture-1"
    media.mkdir(parents=True)
    (media / "source.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    (media / "master.m3u8").write_text("#EXTM3U\n")


async def _snapshot(c: Campus) -> dict:
    conn = await asyncpg.connect(app_dsn(c))
    try:
        users = [tuple(r) for r in await conn.fetch("SELECT * FROM users ORDER BY id")]
        campuses = [tuple(r) for r in await conn.fetch("SELECT * FROM campuses ORDER BY id")]
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    nc = await nats_connect(c)
    try:
        js = nc.jetstream()
        info = await js.stream_info("LMSD_EVENTS")
        messages = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("LMSD_EVENTS", seq)
            messages.append((msg.seq, msg.subject, msg.data, dict(msg.headers or {})))
    finally:
        await nc.close()
    media = {
        p.relative_to(c.data_dir / "media").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((c.data_dir / "media").rglob("*"))
        if p.is_file()
    }
    return {"users": users, "campuses": campuses, "version": version, "messages": messages, "media": media}


def test_backup_running_restore_empty_identical(campus: Campus, tmp_path: Path) -> None:
    asyncio.run(_seed(campus))
    before = asyncio.run(_snapshot(campus))
    assert len(before["users"]) == 501 and len(before["messages"]) == EVENTS and len(before["media"]) == 2

    archive = tmp_path / "campus.tar"
    started = time.perf_counter()
    result = campus.lmsd("backup", "--to", str(archive))
    backup_s = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert oct(archive.stat().st_mode & 0o777) == "0o600"  # it holds the secrets
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest["format"] == "lmsd-backup" and manifest["schema_revision"] == before["version"]
    assert asyncio.run(_snapshot(campus)) == before  # the campus kept running and lost nothing
    assert campus.lmsd("status").returncode == 0

    assert campus.lmsd("down").returncode == 0
    restored = Campus(data_dir=tmp_path / "restored", ports=campus.ports)
    started = time.perf_counter()
    result = restored.lmsd("restore", str(archive))
    restore_s = time.perf_counter() - started
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        after = asyncio.run(_snapshot(restored))
        assert after == before
        assert restored.lmsd("status").returncode == 0
        login = httpx.post(
            restored.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200
        print(f"\nbackup {backup_s:.1f}s, restore {restore_s:.1f}s, archive {archive.stat().st_size / 1e6:.1f} MB")

        # Restoring over a campus needs --force.
        again = restored.lmsd("restore", str(archive))
        assert again.returncode == 1 and "--force" in again.stderr
        # A corrupt copy is refused before anything is touched, even with --force.
        corrupt = tmp_path / "corrupt.tar"
        raw = bytearray(archive.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        corrupt.write_bytes(bytes(raw))
        refused = restored.lmsd("restore", "--force", str(corrupt))
        assert refused.returncode == 1 and "not a usable lmsd backup" in refused.stderr
        foreign = tmp_path / "foreign.tar"
        with tarfile.open(foreign, "w") as tar:
            tar.add(__file__, arcname="etc/something.py")
        refused = restored.lmsd("restore", "--force", str(foreign))
        assert refused.returncode == 1 and "no lmsd manifest" in refused.stderr
        assert restored.lmsd("status").returncode == 0
        assert asyncio.run(_snapshot(restored)) == before
    finally:
        restored.lmsd("down")


def test_backup_while_stopped_and_forced_restore(campus: Campus, tmp_path: Path) -> None:
    asyncio.run(_seed(campus))
    before = asyncio.run(_snapshot(campus))
    assert campus.lmsd("down").returncode == 0
    archive = tmp_path / "offline.tar"
    result = campus.lmsd("backup", "--to", str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    assert campus.lmsd("up").returncode == 0
    # Change things, then restore over them: the change is gone, the old data dir is kept aside.
    (campus.data_dir / "media" / "videos" / "lecture-1" / "source.bin").unlink()
    result = campus.lmsd("restore", "--force", str(archive))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept in" in result.stdout
    assert asyncio.run(_snapshot(campus)) == before
    assert list(campus.data_dir.parent.glob("data.pre-restore-*"))
