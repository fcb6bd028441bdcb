"""Entry point: builds the Typer app and turns every LmsdError into one red line, exit 1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lmsd import __version__
from lmsd.cli import config_cmd, data_cmd, db_cmd, dev_cmd, events_cmd, install_cmd, output, stack_cmd
from lmsd.cli.context import CliContext
from lmsd.errors import LmsdError

app = typer.Typer(
    name="lmsd",
    help="lmsd runs a university's learning platform on this host: install it, start and stop"
    " it, check its health, back it up and upgrade it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        output.info(f"lmsd {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="LMSD_DATA_DIR",
            help="Folder that holds this campus (config, secrets, database, media, logs)."
            " Default: /var/lib/lmsd as root, else ~/.local/share/lmsd.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = CliContext(data_dir)


install_cmd.register(app)
stack_cmd.register(app)
data_cmd.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(dev_cmd.app, name="dev")
app.add_typer(events_cmd.app, name="events")


def main() -> None:
    try:
        # Without standalone mode click returns (not raises) the code of typer.Exit.
        code = app(standalone_mode=False)
    except LmsdError as exc:
        output.fail(str(exc))
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        output.fail("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        output.fail("interrupted")
        sys.exit(130)
    except OSError as exc:  # a path that cannot be read or written: one line, not a traceback
        output.fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        sys.exit(1)
    except Exception as exc:
        # Usage errors of the click that typer bundles: print its message, keep its code (2).
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
