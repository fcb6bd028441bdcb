"""`lmsd db`: the campus database as a Citus cluster — add a worker, move a campus onto Citus."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from lmsd.cli import context, output

app = typer.Typer(help="The campus database on Citus: add a worker, move a campus onto Citus.", no_args_is_help=True)


class _Progress:
    """One line each time the rebalance's state or count of finished moves changes."""

    def __init__(self) -> None:
        self.last: tuple[str, int, int] | None = None

    def __call__(self, state: str, done: int, total: int) -> None:
        if (state, done, total) != self.last:
            self.last = (state, done, total)
            output.info(f"  rebalancing: {done}/{total} shard moves done ({state})")


@app.command("add-worker")
def add_worker(ctx: typer.Context) -> None:
    """Add a Citus worker to the running campus and move shards onto it online (the API keeps serving)."""
    settings = context.get(ctx).settings()
    started = time.perf_counter()
    from lmsd.ops import cluster  # when it runs (see stack_cmd)

    added = cluster.add_worker(settings, output.RichReporter(), _Progress())
    moved = f"{added.moves} shard moves" if added.moves else "no shard to move"
    output.ok(
        f"Worker {added.number} (port {added.port}) joined the cluster; rebalanced, {moved},"
        f" in {time.perf_counter() - started:.1f}s. See `lmsd status`."
    )


@app.command("distribute")
def distribute(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(help="Citus workers to run beside the coordinator.")] = 2,
) -> None:
    """Move this campus from plain PostgreSQL onto Citus, its data kept (the campus restarts once)."""
    settings = context.get(ctx).settings()
    started = time.perf_counter()
    from lmsd.ops import cluster

    tables = cluster.distribute(settings, workers, output.RichReporter())
    output.ok(
        f"The campus runs on Citus with {workers} workers; {len(tables)} tables distributed"
        f" in {time.perf_counter() - started:.1f}s. See `lmsd status`."
    )
