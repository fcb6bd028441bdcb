"""All CLI output goes through here (Rich), so JSON and quiet modes stay easy."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def fail(message: str) -> None:
    """The one way a command reports failure: one red line on stderr."""
    errors.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)


def ok(message: str) -> None:
    console.print(f"[green]✓[/] {message}")


def info(message: str) -> None:
    console.print(message, soft_wrap=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


class RichReporter:
    """Shows each long step with a spinner, then a tick and its duration."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        start = time.perf_counter()
        if self.quiet:
            yield
        else:
            with console.status(f"{title}…", spinner="dots"):
                yield
        elapsed = time.perf_counter() - start
        self.timings[title] = elapsed
        if not self.quiet:
            ok(f"{title} [dim]({elapsed:.1f}s)[/]")

    def info(self, message: str) -> None:
        if not self.quiet:
            console.print(f"  [dim]{message}[/]")


def status_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"{report['campus']['name']} — {report['portal_url']}", title_justify="left")
    for column in ("component", "status", "version", "latency", "pid", "restarts", "detail"):
        table.add_column(column, justify="right" if column in ("latency", "pid", "restarts") else "left")
    for row in report["components"]:
        status = "[green]up[/]" if row["ok"] else ("[red]down[/]" if row["required"] else "[yellow]down[/]")
        table.add_row(
            row["label"],
            status,
            row["version"] or "-",
            f"{row['latency_ms']:.1f} ms" if row["ok"] else "-",
            str(row["pid"] or "-"),
            str(row["restarts"]),
            row["detail"],
        )
    return table


def events_line(bus: dict[str, Any]) -> str:
    """One line for `lmsd status`: relay backlog and lag, consumer lag, dead letters."""
    if "error" in bus:
        return f"Events: [yellow]unknown[/] ({bus['error']})"
    relay = bus["relay"]
    consumers = ", ".join(f"{c['name']} {c['pending'] + c['unacknowledged']} behind" for c in bus["consumers"])
    dlq = bus["dead_letters"]
    return (
        f"Events: relay backlog {relay['backlog']} (oldest {relay['lag_s']:.1f}s); {consumers}; "
        + (f"[red]{dlq} dead letters[/] (`lmsd events dlq`)" if dlq else "no dead letters")
    )
