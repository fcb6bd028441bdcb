"""`lmsd upgrade`: backup -> stop -> migrate -> start -> health check, or roll back.

Run it after installing a newer lmsd package: it brings the schema and the streams to what the
new code expects and restarts every process on the new code. If any step after the backup
fails, the stack is stopped, the backup is restored (the failed state is kept aside for a
post-mortem) and the campus is started again as it was.

On Citus the same steps hold: the backup is the cluster's (every node to one restore point,
:mod:`lmsd.ops.backup_citus`), the migrations run through the coordinator with the workers up
(``postgres.temporary_server`` starts them), and the rollback restores every node.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from lmsd import credentials
from lmsd.db import migrate
from lmsd.errors import LmsdError, OperationFailed
from lmsd.ops import backup as backup_ops
from lmsd.ops.install import initialise_bus
from lmsd.ops.report import Reporter, SilentReporter
from lmsd.ops.status import collect
from lmsd.runtime import control, postgres
from lmsd.settings import Settings, load_settings


@dataclass
class UpgradeResult:
    backup: Path
    from_revision: str
    to_revision: str
    rolled_back: bool = False
    failure: str = ""
    kept_aside: Path | None = None
    notes: list[str] = field(default_factory=list)


async def _migrate_offline(settings: Settings) -> str:
    secrets = credentials.load(settings.data_dir)
    async with postgres.temporary_server(settings, secrets):
        return await asyncio.to_thread(migrate.upgrade, settings, secrets)


def upgrade(settings: Settings, reporter: Reporter) -> UpgradeResult:
    if not backup_ops.is_installed(settings.data_dir):
        raise OperationFailed(f"no campus is installed in {settings.data_dir}: run `lmsd install`")
    secrets = credentials.load(settings.data_dir)
    was_running = control.running_pid(settings) is not None
    info = backup_ops.create_backup(
        settings, reporter, backup_ops.default_backup_path(settings, "pre-upgrade")
    )
    result = UpgradeResult(info.path, info.manifest["schema_revision"], "")
    step = "stopping the stack"
    try:
        if was_running:
            with reporter.step("Stopping the stack"):
                control.stop(settings)
        step = "running migrations"
        with reporter.step("Running migrations"):
            result.to_revision = asyncio.run(_migrate_offline(settings))
        step = "starting the stack"
        with reporter.step("Starting the stack"):
            control.start(settings)
        step = "updating JetStream streams"
        with reporter.step("Updating JetStream streams"):
            for stream, action in asyncio.run(initialise_bus(settings, secrets)):
                result.notes.append(f"stream {stream}: {action}")
        step = "checking health"
        with reporter.step("Checking health"):
            report = asyncio.run(collect(settings))
            down = [row["label"] for row in report["components"] if row["required"] and not row["ok"]]
            if down:
                raise OperationFailed(f"unhealthy after restart: {', '.join(down)}")
        if not was_running:
            control.stop(settings)
    except LmsdError as exc:
        result.rolled_back = True
        result.failure = f"{step}: {exc}"
        _roll_back(settings, info.path, was_running, result, reporter)
    return result


def _roll_back(
    settings: Settings, archive: Path, was_running: bool, result: UpgradeResult, reporter: Reporter
) -> None:
    with reporter.step("Rolling back to the backup"):
        if control.running_pid(settings) is not None:
            control.stop(settings)
        try:
            _, _, aside = backup_ops.restore(
                settings.data_dir, archive, SilentReporter(), force=True, start=was_running
            )
        except LmsdError as exc:
            raise OperationFailed(
                f"upgrade failed ({result.failure}) and the rollback failed too: {exc};"
                f" the backup to restore by hand is {archive}"
            ) from exc
        result.kept_aside = aside
    load_settings(settings.data_dir)
