"""`lmsd backup`, `restore`, `upgrade`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lmsd.cli import context, output
from lmsd.errors import OperationFailed


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup(
        ctx: typer.Context,
        to: Annotated[
            Path | None, typer.Option("--to", help="Archive to write (default: <data dir>/backups/…).")
        ] = None,
    ) -> None:
        """Write a consistent snapshot of the database, the event store, media and config.

        Works while the campus runs (NATS pauses for a moment) or while it is stopped. The
        file holds the campus's secrets and is written readable by you only.
        """
        from lmsd.ops import backup as backup_ops

        settings = context.get(ctx).settings()
        started = time.perf_counter()
        info = backup_ops.create_backup(settings, output.RichReporter(), to)
        output.ok(
            f"backup written to [bold]{info.path}[/] ({info.size / 1e6:.1f} MB, {info.files} files,"
            f" {time.perf_counter() - started:.1f}s)"
        )

    @app.command("restore")
    def restore(
        ctx: typer.Context,
        archive: Annotated[Path, typer.Argument(help="A file written by `lmsd backup`.")],
        force: Annotated[
            bool, typer.Option(help="Replace the campus in this data dir (the old data is kept aside).")
        ] = False,
        start: Annotated[bool, typer.Option(help="Start the campus after restoring.")] = True,
    ) -> None:
        """Restore a backup into the data dir (empty, or with --force). Checks it fully first."""
        from lmsd.ops import backup as backup_ops

        cli = context.get(ctx)
        started = time.perf_counter()
        settings, manifest, aside = backup_ops.restore(
            cli.data_dir, archive, output.RichReporter(), force=force, start=start
        )
        output.ok(
            f"restored campus [bold]{manifest['campus_name']}[/] from {manifest['created_at']}"
            f" in {time.perf_counter() - started:.1f}s"
        )
        if aside is not None:
            output.info(f"  The data it replaced is kept in {aside}")
        if start:
            output.info(f"  Portal: [bold]{settings.portal_url}[/]")

    @app.command("upgrade")
    def upgrade_command(ctx: typer.Context) -> None:
        """Bring the campus to this version of lmsd: back up, migrate, restart, health-check.

        If any step fails, it restores the backup and restarts the campus as it was.
        """
        from lmsd.ops.upgrade import upgrade

        settings = context.get(ctx).settings()
        result = upgrade(settings, output.RichReporter())
        if result.rolled_back:
            message = (
                f"upgrade failed while {result.failure}; rolled back to the backup {result.backup},"
                " the campus is as it was before"
            )
            if result.kept_aside:
                message += f" (the failed state is kept in {result.kept_aside})"
            raise OperationFailed(message)
        output.ok(
            f"upgraded: schema {result.from_revision or 'none'} → {result.to_revision};"
            f" backup kept at {result.backup}"
        )
