"""`lmsd config show` and `lmsd config set`."""

from __future__ import annotations

from typing import Annotated

import tomli_w
import typer

from lmsd import credentials
from lmsd.cli import context, output
from lmsd.settings import set_config_value

app = typer.Typer(help="Show or change this campus's configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
) -> None:
    """Print the effective configuration (defaults, file and LMSD_* variables); secrets masked."""
    cli = context.get(ctx)
    settings = cli.settings()
    data = settings.model_dump(mode="json")
    if credentials.secrets_path(settings.data_dir).exists():
        data["secrets"] = {name: credentials.MASK for name in credentials.Secrets.model_fields}
    if json_out:
        output.emit_json(data)
    else:
        output.console.out(tomli_w.dumps(data), highlight=False)


@app.command("set")
def set_(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Dotted name, e.g. api.workers or campus.name.")],
    value: Annotated[str, typer.Argument(help="New value (lists: comma-separated).")],
) -> None:
    """Change one setting in the config file after checking the result is valid.

    Restart with `lmsd down && lmsd up` for running processes to see it.
    """
    cli = context.get(ctx)
    if key.split(".")[0] == "secrets":
        from lmsd.errors import Invalid

        raise Invalid("secrets are generated at install and are not set with `lmsd config set`")
    set_config_value(cli.data_dir, key, value)
    output.ok(f"{key} = {value}")
