"""`lmsd up`, `down`, `status`, `logs`.

Each command imports what it runs when it runs (here and in the other command modules): `lmsd
down` should not pay for importing the API, the migrations and the status probes, a few seconds of
CPU on every call.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from lmsd.cli import context, output
from lmsd.errors import OperationFailed
from lmsd.paths import RunPaths
from lmsd.runtime import control


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        ctx: typer.Context,
        foreground: Annotated[
            bool, typer.Option(help="Stay attached and supervise here (for systemd); Ctrl-C stops.")
        ] = False,
    ) -> None:
        """Start every component of the campus and wait until all are healthy."""
        from lmsd.ops.backup import is_installed

        settings = context.get(ctx).settings()
        if not is_installed(settings.data_dir):
            raise OperationFailed(f"no campus is installed in {settings.data_dir}: run `lmsd install`")
        pid = control.running_pid(settings)
        if pid is not None:
            output.info(f"lmsd is already running (supervisor pid {pid}); see `lmsd status`")
            return
        if foreground:
            from lmsd import credentials
            from lmsd.runtime import components, preflight, supervisor

            preflight.check_all(settings)
            comps = components.build(settings, credentials.load(settings.data_dir))
            raise typer.Exit(asyncio.run(supervisor.run(settings, comps)))
        started = time.perf_counter()
        with output.console.status("Starting PostgreSQL, NATS, the API and the gateway…"):
            pid = control.start(settings)
        output.ok(f"lmsd is up in {time.perf_counter() - started:.1f}s (supervisor pid {pid})")
        output.info(f"  Portal: [bold]{settings.portal_url}[/]")

    @app.command("down")
    def down(ctx: typer.Context) -> None:
        """Stop the campus gracefully (in-flight requests finish, databases shut down cleanly)."""
        settings = context.get(ctx).settings()
        started = time.perf_counter()
        with output.console.status("Stopping…"):
            stopped = control.stop(settings)
        if stopped:
            output.ok(f"lmsd stopped in {time.perf_counter() - started:.1f}s")
        else:
            output.info("lmsd is not running")

    @app.command("status")
    def status(
        ctx: typer.Context,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Probe every component for real and show one row each; exit 1 if anything required is down."""
        from lmsd.ops.status import collect

        settings = context.get(ctx).settings()
        report = asyncio.run(collect(settings))
        if json_out:
            output.emit_json(report)
        else:
            output.console.print(output.status_table(report))
            if report.get("events"):
                output.info(output.events_line(report["events"]))
            verdict = "[green]healthy[/]" if report["healthy"] else "[red]unhealthy[/]"
            output.info(f"Campus is {verdict}.")
        if not report["healthy"]:
            raise typer.Exit(1)

    @app.command("logs")
    def logs(
        ctx: typer.Context,
        component: Annotated[
            str | None, typer.Argument(help="postgres, nats, api-0, gateway, supervisor… (default: all)")
        ] = None,
        lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines of each log.")] = 50,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    ) -> None:
        """Show the log of one component, or the end of every log."""
        settings = context.get(ctx).settings()
        log_dir = RunPaths(settings.data_dir).logs
        available = sorted(p.stem for p in log_dir.glob("*.log")) if log_dir.exists() else []
        if component is not None and component not in available:
            known = ", ".join(available) or "none yet"
            raise OperationFailed(f"no log for {component!r} (known: {known})")
        for name in [component] if component else available:
            path = log_dir / f"{name}.log"
            if not component:
                output.console.rule(name)
            for line in _tail(path, lines):
                output.console.out(line, highlight=False)
        if follow:
            _follow([log_dir / f"{n}.log" for n in ([component] if component else available)])


def _tail(path: Path, count: int) -> list[str]:
    with open(path, errors="replace") as handle:
        return [ln.rstrip("\n") for ln in handle.readlines()[-count:]] if count > 0 else []


def _follow(paths: list[Path]) -> None:
    handles = [open(p, errors="replace") for p in paths]  # noqa: SIM115
    for handle in handles:
        handle.seek(0, 2)
    try:
        while True:
            for handle in handles:
                for line in handle.readlines():
                    output.console.out(line.rstrip("\n"), highlight=False)
            time.sleep(0.3)
    except KeyboardInterrupt:
        pass
