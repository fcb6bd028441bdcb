"""`lmsd backup` and `lmsd restore`.

A backup is one tar file (mode 0600: it holds the secrets) laid out as::

    manifest.json          format, versions, campus, schema revision, topology (Citus workers),
                           sha256 of every member
    db/lmsd.dump           pg_dump custom format: a consistent MVCC snapshot
    db/citus/<node>/...    on Citus instead: each node's base backup and WAL up to one restore
                           point of the whole cluster (lmsd.ops.backup_citus)
    jetstream/...          the JetStream store, copied while NATS is paused
    media/...              generated media (HLS ladders, subtitles) served under /media/
    videos/...             uploaded video sources (kept to transcode again)
    config/config.toml     the admin's config
    config/secrets.toml    the generated secrets (the restored campus keeps its keys)

Consistency: pg_dump reads one snapshot while the campus keeps running. NATS is paused for
the copy of its store (a second or so); producers keep their events in the outbox meanwhile,
so nothing is lost. Restore verifies every checksum before it changes anything.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmsd
from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.db import migrate
from lmsd.errors import Invalid, OperationFailed
from lmsd.ops import backup_citus
from lmsd.ops.report import Reporter
from lmsd.paths import RunPaths
from lmsd.runtime import binaries, control, postgres
from lmsd.runtime import nats as nats_rt
from lmsd.runtime.process import run_tool
from lmsd.settings import CONFIG_FILE, Settings, load_settings

FORMAT = "lmsd-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class BackupInfo:
    path: Path
    size: int
    files: int
    manifest: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_backup_path(settings: Settings, label: str = "backup") -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return settings.data_dir / "backups" / f"lmsd-{label}-{stamp}.tar"


def _copy_tree(src: Path, dst: Path) -> None:
    if src.exists():
        shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True)
    else:
        dst.mkdir(parents=True, exist_ok=True)


@contextmanager
def _nats_paused(settings: Settings, running: bool) -> Iterator[None]:
    if not running:
        yield
        return
    control.command(settings, "pause", "nats")
    try:
        yield
    finally:
        control.command(settings, "resume", "nats")


def _pg_dump(settings: Settings, secrets: Secrets, out: Path) -> None:
    result = run_tool(
        [
            binaries.postgres_tool("pg_dump", settings),
            "--format=custom",
            "--file", out,
            "--dbname", settings.postgres.database,
        ],
        env=postgres.tool_env(settings, secrets),
    )
    if result.returncode != 0:
        raise OperationFailed(f"pg_dump failed: {result.stderr.strip().splitlines()[-1:]}")


def create_backup(settings: Settings, reporter: Reporter, dest: Path | None = None) -> BackupInfo:
    secrets = credentials.load(settings.data_dir)
    if not postgres.is_initialised(settings):
        raise OperationFailed(f"nothing to back up: no campus is installed in {settings.data_dir}")
    dest = (dest or default_backup_path(settings)).expanduser().resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    running = control.running_pid(settings) is not None
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=dest.parent))
    try:
        (staging / "db").mkdir()
        topology: dict[str, Any] = {"citus_workers": 0}
        if settings.postgres.citus_enabled:
            with reporter.step("Backing up every Citus node (pg_basebackup to one restore point)"):
                topology, schema = backup_citus.dump(settings, secrets, staging / "db", running)
        else:
            with reporter.step("Dumping the database (pg_dump)"):
                schema = _dump_plain(settings, secrets, staging / "db" / "lmsd.dump", running)
        with reporter.step("Copying the JetStream store"), _nats_paused(settings, running):
            _copy_tree(nats_rt.store_dir(settings), staging / "jetstream")
        with reporter.step("Copying media files"):
            _copy_tree(RunPaths(settings.data_dir).media, staging / "media")
            _copy_tree(settings.data_dir / "videos", staging / "videos")
        (staging / "config").mkdir()
        shutil.copy2(settings.data_dir / CONFIG_FILE, staging / "config" / "config.toml")
        shutil.copy2(credentials.secrets_path(settings.data_dir), staging / "config" / "secrets.toml")
        with reporter.step("Writing the archive"):
            manifest = _write_archive(settings, staging, dest, schema, topology)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupInfo(dest, dest.stat().st_size, len(manifest["files"]), manifest)


def _dump_plain(settings: Settings, secrets: Secrets, out: Path, running: bool) -> str:
    if not running:
        return asyncio.run(_dump_offline(settings, secrets, out))
    _pg_dump(settings, secrets, out)
    return asyncio.run(migrate.current(settings, secrets))


async def _dump_offline(settings: Settings, secrets: Secrets, out: Path) -> str:
    async with postgres.temporary_server(settings, secrets):
        await asyncio.to_thread(_pg_dump, settings, secrets, out)
        return await migrate.current(settings, secrets)


def _write_archive(
    settings: Settings, staging: Path, dest: Path, schema: str, topology: dict[str, Any]
) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = path.relative_to(staging).as_posix()
        files[rel] = {"sha256": _sha256(path), "size": path.stat().st_size}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lmsd_version": lmsd.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "campus_id": settings.campus.id,
        "campus_name": settings.campus.name,
        "schema_revision": schema,
        "topology": topology,
        "files": files,
    }
    part = dest.with_name(dest.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
        for rel in files:
            tar.add(staging / rel, arcname=rel, recursive=False)
    os.replace(part, dest)
    return manifest


def verify(path: Path) -> dict[str, Any]:
    """Read the whole archive and check it. Raises Invalid before anything is touched."""
    refuse = f"{path} is not a usable lmsd backup"
    if not path.is_file():
        raise Invalid(f"{path}: no such backup file")
    try:
        with tarfile.open(path, mode="r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise Invalid(f"{refuse}: it has no lmsd manifest (foreign file?)")
            handle = tar.extractfile(first)
            assert handle is not None
            manifest = json.loads(handle.read())
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise Invalid(f"{refuse}: the manifest is not an lmsd backup manifest (foreign file?)")
            if manifest.get("format_version") != FORMAT_VERSION:
                raise Invalid(f"{refuse}: format version {manifest.get('format_version')} is not supported")
            expected: dict[str, dict[str, Any]] = manifest.get("files", {})
            seen: set[str] = set()
            for member in tar:
                if member.offset == first.offset:
                    continue
                name = member.name
                if name.startswith("/") or ".." in Path(name).parts or not member.isfile():
                    raise Invalid(f"{refuse}: unsafe member {name!r}")
                if name not in expected:
                    raise Invalid(f"{refuse}: member {name!r} is not in the manifest")
                digest = hashlib.sha256()
                stream = tar.extractfile(member)
                assert stream is not None
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                if digest.hexdigest() != expected[name]["sha256"]:
                    raise Invalid(f"{refuse}: checksum mismatch in {name} (the file is corrupt)")
                seen.add(name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise Invalid(f"{refuse}: {exc} (corrupt or truncated)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise Invalid(f"{refuse}: its manifest is damaged") from None
    missing = set(expected) - seen
    if missing:
        raise Invalid(f"{refuse}: {len(missing)} file(s) missing, e.g. {sorted(missing)[0]} (truncated?)")
    try:
        database = backup_citus.required_members(manifest)
    except (Invalid, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Invalid(f"{refuse}: {exc if isinstance(exc, Invalid) else 'its topology is damaged'}") from None
    for needed in (*database, "config/config.toml", "config/secrets.toml"):
        if needed not in expected:
            raise Invalid(f"{refuse}: it lacks {needed}")
    return manifest


def is_installed(data_dir: Path) -> bool:
    return (data_dir / CONFIG_FILE).exists() or (data_dir / "postgres" / "PG_VERSION").exists()


def restore(
    data_dir: Path, archive: Path, reporter: Reporter, force: bool = False, start: bool = True
) -> tuple[Settings, dict[str, Any], Path | None]:
    """Restore ``archive`` into ``data_dir``. Returns (settings, manifest, moved-aside old dir)."""
    archive = archive.expanduser().resolve()
    with reporter.step("Verifying the backup"):
        manifest = verify(archive)
        backup_citus.check_topology(archive, manifest, _planned_settings(archive))
    aside: Path | None = None
    if is_installed(data_dir):
        if not force:
            raise OperationFailed(
                f"{data_dir} already holds a campus; restore into an empty data dir,"
                " or pass --force to replace it (the current data is kept aside)"
            )
        current = load_settings(data_dir)
        if control.running_pid(current) is not None:
            with reporter.step("Stopping the running stack"):
                control.stop(current)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = data_dir.with_name(f"{data_dir.name}.pre-restore-{stamp}")
        os.replace(data_dir, aside)
        # Backups stay where the admin expects them.
        if (aside / "backups").exists():
            data_dir.mkdir(parents=True)
            os.replace(aside / "backups", data_dir / "backups")
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        with reporter.step("Unpacking"), tarfile.open(archive, mode="r:") as tar:
            tar.extractall(staging, filter="data")
        shutil.copy2(staging / "config" / "config.toml", data_dir / CONFIG_FILE)
        credentials.write(
            data_dir,
            credentials.Secrets.model_validate(
                tomllib.loads((staging / "config" / "secrets.toml").read_text())
            ),
        )
        settings = load_settings(data_dir)
        secrets = credentials.load(data_dir)
        if backup_citus.archive_workers(manifest):
            with reporter.step("Restoring every Citus node to the backup's restore point"):
                backup_citus.restore_cluster(settings, secrets, staging, manifest)
        else:
            with reporter.step("Initialising PostgreSQL (initdb)"):
                postgres.initdb(settings, secrets)
            with reporter.step("Restoring the database (pg_restore)"):
                asyncio.run(_restore_db(settings, secrets, staging / "db" / "lmsd.dump"))
        with reporter.step("Restoring the JetStream store and media"):
            shutil.rmtree(nats_rt.store_dir(settings), ignore_errors=True)
            nats_rt.nats_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
            _copy_tree(staging / "jetstream", nats_rt.store_dir(settings))
            media = RunPaths(data_dir).media
            shutil.rmtree(media, ignore_errors=True)
            _copy_tree(staging / "media", media)
            shutil.rmtree(data_dir / "videos", ignore_errors=True)
            if (staging / "videos").exists():  # backups before 0.2 have no video sources
                _copy_tree(staging / "videos", data_dir / "videos")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if start:
        with reporter.step("Starting the stack"):
            control.start(settings)
    return settings, manifest, aside


def _planned_settings(archive: Path) -> Settings:
    """The settings a restored campus would run with: the archive's config under this environment."""
    with tempfile.TemporaryDirectory(prefix="lmsd-restore-") as tmp, tarfile.open(archive, mode="r:") as tar:
        config = tar.extractfile("config/config.toml")
        assert config is not None  # verify() checked it is a file
        (Path(tmp) / CONFIG_FILE).write_bytes(config.read())
        return load_settings(Path(tmp))


async def _restore_db(settings: Settings, secrets: Secrets, dump: Path) -> None:
    async with postgres.temporary_server(settings, secrets):
        result = await asyncio.to_thread(
            run_tool,
            [
                binaries.postgres_tool("pg_restore", settings),
                "--exit-on-error",
                "--single-transaction",
                "--dbname", settings.postgres.database,
                dump,
            ],
            env=postgres.tool_env(settings, secrets),
        )
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            raise OperationFailed(f"pg_restore failed: {lines[-1] if lines else 'no output'}")
