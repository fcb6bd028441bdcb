"""`lmsd events`: the event backbone — status, dead letters, projection replay."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from lmsd import credentials
from lmsd.cli import context, output
from lmsd.errors import OperationFailed

if TYPE_CHECKING:
    from types import ModuleType



def _ops() -> ModuleType:
    """lmsd.ops.events, imported when a command runs (see stack_cmd)."""
    from lmsd.ops import events

    return events


app = typer.Typer(help="The event backbone: status, dead letters, projection replay.", no_args_is_help=True)
dlq = typer.Typer(help="Messages a consumer gave up on: list, apply again, drop.", invoke_without_command=True)
app.add_typer(dlq, name="dlq")


@app.command("status")
def status(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Relay backlog and lag, each consumer's lag and applied count, dead letters."""
    settings = context.get(ctx).settings()
    report = asyncio.run(_ops().summary(settings, credentials.load(settings.data_dir)))
    if json_out:
        output.emit_json(report)
    else:
        output.info(output.events_line(report))


@dlq.callback()
def dlq_list(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List dead letters (default), or apply them again / drop them (sub-commands)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = context.get(ctx).settings()
    letters = asyncio.run(_ops().dead_letters(settings, credentials.load(settings.data_dir)))
    if json_out:
        output.emit_json([d.as_dict() for d in letters])
        return
    if not letters:
        output.info("no dead letters")
        return
    for d in letters:
        output.console.print(
            f"{d.seq:>6}  {d.consumer:<10} {d.subject}  (stream seq {d.stream_seq}, {d.deliveries} deliveries)\n"
            f"        reason: {d.reason}",
            highlight=False,
        )


@dlq.command("replay")
def dlq_replay(
    ctx: typer.Context,
    seqs: Annotated[list[int] | None, typer.Argument(help="Dead-letter sequence numbers (default: all).")] = None,
) -> None:
    """Apply dead letters again through their consumer (idempotent); applied ones are removed.
    Media jobs (transcode, transcribe) are queued again instead."""
    settings = context.get(ctx).settings()
    results = asyncio.run(_ops().replay_dead_letters(settings, credentials.load(settings.data_dir), seqs or None))
    for seq, outcome in results:
        output.info(f"{seq}: {outcome}")
    kept = [seq for seq, outcome in results if outcome not in ("applied", "queued again")]
    if kept:
        raise OperationFailed(f"{len(kept)} of {len(results)} dead letters still fail")
    output.ok(f"{len(results)} dead letters applied or queued again")


@dlq.command("drop")
def dlq_drop(ctx: typer.Context, seq: Annotated[int, typer.Argument(help="Dead-letter sequence number.")]) -> None:
    """Delete one dead letter for good (e.g. a message that can never be decoded)."""
    settings = context.get(ctx).settings()
    asyncio.run(_ops().drop_dead_letter(settings, credentials.load(settings.data_dir), seq))
    output.ok(f"dead letter {seq} dropped")


@app.command("replay")
def replay(
    ctx: typer.Context,
    projection: Annotated[str, typer.Option("--projection", help="progress, gradebook, xapi, or learning (all three).")],
    from_start: Annotated[bool, typer.Option("--from-start", help="Ignore the snapshot; read the whole stream.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rebuild a projection from the stream into fresh tables and compare them with the live ones.

    Starts from the projection's latest snapshot and leaves a new one, so the next replay reads
    only newer events. Exit 1 when the rebuilt tables differ from the live ones."""
    settings = context.get(ctx).settings()
    report = asyncio.run(_ops().replay(settings, credentials.load(settings.data_dir), projection, from_start=from_start))
    if json_out:
        output.emit_json(report.as_dict())
    else:
        start = f"snapshot at {report.snapshot_seq}" if report.snapshot_seq is not None else "the start"
        rows = ", ".join(f"{t} {n}" for t, n in report.rows.items())
        output.info(
            f"replayed {report.events} events (stream {report.from_seq}..{report.to_seq}, from {start}) "
            f"in {report.seconds:.2f}s: {rows}"
        )
    differing = {t: n for t, n in report.differences.items() if n}
    if not report.comparable:
        output.info(f"live projection is {report.live_pending} events behind: compare again when it has caught up")
    elif differing:
        raise OperationFailed(f"rebuilt {projection} differs from the live one: {differing} rows")
    elif not json_out:
        output.ok(f"rebuilt {projection} equals the live projection")
