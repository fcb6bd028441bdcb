"""`lmsd install`."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from lmsd.cli import context, output
from lmsd.errors import Invalid
from lmsd.settings import Settings, load_settings


def _ask(settings: Settings, flags: dict[str, Any]) -> dict[str, Any]:
    questions = [
        ("campus_name", "Campus name (shown to learners)", settings.campus.name),
        ("host", "Host name learners will use", settings.campus.host),
        ("admin_email", "E-mail of the first administrator", settings.campus.admin_email),
        ("http_port", "Port of the portal (gateway)", settings.gateway.port),
    ]
    for key, question, default in questions:
        if flags[key] is None:
            flags[key] = typer.prompt(question, default=default, type=type(default))
    return flags


def register(app: typer.Typer) -> None:
    @app.command("install")
    def install_command(
        ctx: typer.Context,
        profile: Annotated[
            str, typer.Option(help="Where the campus runs: embedded (this host, no Docker), compose or helm.")
        ] = "embedded",
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask questions; use flags and defaults.")] = False,
        campus_name: Annotated[str | None, typer.Option(help="Campus name shown to learners.")] = None,
        host: Annotated[str | None, typer.Option(help="Host name learners use to reach the portal.")] = None,
        admin_email: Annotated[str | None, typer.Option(help="E-mail (login) of the first administrator.")] = None,
        admin_password: Annotated[
            str | None,
            typer.Option(
                envvar="LMSD_ADMIN_PASSWORD",
                help="Password of the first administrator (default: a generated one, shown once).",
                show_default=False,
            ),
        ] = None,
        http_port: Annotated[int | None, typer.Option(help="Port of the portal (the gateway).")] = None,
        api_port: Annotated[int | None, typer.Option(help="Port of the first API worker.")] = None,
        workers: Annotated[int | None, typer.Option(help="Number of API worker processes.")] = None,
        postgres_port: Annotated[int | None, typer.Option(help="Port of PostgreSQL (loopback).")] = None,
        nats_port: Annotated[int | None, typer.Option(help="Port of NATS (loopback).")] = None,
        citus_workers: Annotated[
            int | None,
            typer.Option(help="Run PostgreSQL as a Citus cluster: a coordinator and this many workers (docs/citus.md)."),
        ] = None,
        nats_monitor_port: Annotated[int | None, typer.Option(help="Port of NATS monitoring (loopback).")] = None,
        start: Annotated[bool, typer.Option(help="Leave the campus running afterwards.")] = True,
    ) -> None:
        """Install a campus on this host (or bring an existing install up to date).

        Asks a few questions (or takes flags with --yes), generates secrets, initialises
        PostgreSQL and NATS JetStream, creates the first administrator, starts everything
        and prints the portal's address. Safe to run again.
        """
        cli = context.get(ctx)
        started = time.perf_counter()
        base = load_settings(cli.data_dir)
        flags: dict[str, Any] = {
            "campus_name": campus_name, "host": host, "admin_email": admin_email, "http_port": http_port,
        }
        if not yes:
            if not sys.stdin.isatty():
                raise Invalid("no terminal to ask questions on: run `lmsd install --yes` with flags")
            flags = _ask(base, flags)
        answers = {
            "profile": profile,
            "campus": {"name": flags["campus_name"], "host": flags["host"], "admin_email": flags["admin_email"]},
            "gateway": {"port": flags["http_port"]},
            "api": {"port": api_port, "workers": workers},
            "postgres": {"port": postgres_port, "citus_workers": citus_workers},
            "nats": {"port": nats_port, "monitor_port": nats_monitor_port},
        }
        output.info(f"Installing lmsd into [bold]{cli.data_dir}[/]")
        reporter = output.RichReporter()
        from lmsd.ops.install import install  # when it runs (see stack_cmd)

        result = install(base, answers, reporter, admin_password=admin_password, start=start)
        settings = result.settings
        output.ok(f"Campus [bold]{settings.campus.name}[/] is ready in {time.perf_counter() - started:.1f}s")
        if result.started:
            output.info(f"\n  Portal:   [bold]{settings.portal_url}[/]")
        output.info(f"  Sign in:  {result.admin_email}")
        if result.admin_password and admin_password is None:
            output.info(f"  Password: [bold]{result.admin_password}[/]  (shown once; change it after signing in)")
        elif result.admin_password is None:
            output.info("  Password: unchanged (the administrator already existed)")
        output.info("\n  Check health with `lmsd status`; stop with `lmsd down`.")
