"""`lmsd dev`: tools for developers and benchmarks (OpenAPI export, realistic seed data)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lmsd.cli import context, output

app = typer.Typer(help="Developer tools: OpenAPI export, seed data.", no_args_is_help=True)


@app.command("openapi")
def openapi(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write the document.")] = Path("docs/openapi.json"),
) -> None:
    """Write the API's OpenAPI 3.1 document (the copy in docs/ is checked by the tests)."""
    from lmsd.ops import openapi as openapi_ops
    from lmsd.settings import Settings

    openapi_ops.write(Settings(data_dir=context.get(ctx).data_dir), out)
    output.ok(f"OpenAPI document written to {out}")


@app.command("seed")
def seed(
    ctx: typer.Context,
    scale: Annotated[float, typer.Option(help="Multiplier of the default size (1.0: 200k users, 20k courses, 2M enrolments).")] = 1.0,
) -> None:
    """Fill the installed campus with a realistic data set for benchmarks (fast: COPY)."""
    from lmsd.ops.seed import seed as run_seed

    settings = context.get(ctx).settings()
    started = time.perf_counter()
    counts = run_seed(settings, scale, output.RichReporter())
    summary = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    output.ok(f"seeded {summary} in {time.perf_counter() - started:.1f}s")
