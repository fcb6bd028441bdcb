"""`lmsd install`: from nothing (or an earlier install) to a running, initialised campus.

Every step is idempotent, so running it twice is safe: an existing config keeps its generated
values, secrets are generated once, initdb and the first admin happen once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors

from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.db import migrate
from lmsd.db.engine import make_engine, make_sessionmaker
from lmsd.errors import Invalid, LmsdError, OperationFailed
from lmsd.events.connection import nats_connect
from lmsd.events.streams import ensure_streams
from lmsd.identity.service import ensure_admin, ensure_campus
from lmsd.ops.report import Reporter
from lmsd.runtime import citus, control, postgres, preflight
from lmsd.settings import (
    Settings,
    env_layer,
    load_settings,
    read_config_file,
    validate_config,
    write_config_file,
)


@dataclass
class InstallResult:
    settings: Settings
    admin_email: str
    admin_password: str | None  # only when this run created the admin
    started: bool


def _with_env(values: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    merged = dict(values)
    for key, value in env.items():
        merged[key] = _with_env(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def write_answers(
    data_dir: Path, answers: dict[str, Any], check: Callable[[Settings], None] | None = None
) -> Settings:
    """Merge the admin's answers into the config file, generating the campus id once.

    ``check`` sees the settings the file would give (``LMSD_*`` included) before anything is
    written, so a refusal (Citus missing, say) leaves the data dir as it was."""
    current = read_config_file(data_dir)
    for section, values in answers.items():
        if isinstance(values, dict):
            picked = {k: v for k, v in values.items() if v is not None}
            if picked:
                current.setdefault(section, {}).update(picked)
        elif values is not None:
            current[section] = values
    campus = current.setdefault("campus", {})
    if not campus.get("id"):
        campus["id"] = str(uuid.uuid4())
    validate_config(data_dir, current)  # nothing is written unless the whole result is valid
    if check is not None:
        check(validate_config(data_dir, _with_env(current, env_layer(dict(os.environ)))))
    write_config_file(data_dir, current)
    return load_settings(data_dir)


async def initialise_bus(settings: Settings, secrets: Secrets) -> list[tuple[str, str]]:
    try:
        nc = await nats_connect(settings, secrets)
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        raise OperationFailed(f"cannot reach NATS to create streams: {exc}") from None
    try:
        return await ensure_streams(nc, lrs_enabled=bool(settings.events.xapi_lrs_url))
    finally:
        await nc.close()


async def initialise_campus(settings: Settings, secrets: Secrets, admin_password: str) -> bool:
    engine = make_engine(settings, secrets, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            campus_id = uuid.UUID(settings.campus.id)
            await ensure_campus(session, campus_id, settings.campus.name, settings.campus.host)
            _, created = await ensure_admin(session, campus_id, settings.campus.admin_email, admin_password)
    finally:
        await engine.dispose()
    return created


def install(
    settings: Settings,
    answers: dict[str, Any],
    reporter: Reporter,
    admin_password: str | None = None,
    start: bool = True,
) -> InstallResult:
    profile = answers.get("profile") or settings.profile
    if profile != "embedded":
        raise Invalid(
            f"the {profile} profile is rendered for another host, not installed here;"
            " use --profile embedded on this machine"
        )
    preflight.check_data_dir(settings.data_dir)
    preflight.check_disk(settings.data_dir, settings.runtime.min_free_disk_mb)
    wants_citus = bool((answers.get("postgres") or {}).get("citus_workers"))
    if wants_citus and postgres.is_initialised(settings) and not settings.postgres.citus_enabled:
        raise Invalid(
            "this campus was installed on plain PostgreSQL: move it to Citus with `lmsd db distribute --workers N`"
        )
    with reporter.step("Writing configuration"):
        settings = write_answers(settings.data_dir, answers, check=preflight.check_citus)
        secrets, _ = credentials.ensure(settings.data_dir)
    running = control.running_pid(settings) is not None
    if not running:
        preflight.check_ports(settings)
    with reporter.step("Initialising PostgreSQL (initdb)"):
        postgres.initdb(settings, secrets)
        for i in citus.initdb_workers(settings, secrets):
            reporter.info(f"Citus worker {i}: initialised")
    started_here = False
    if not running:
        with reporter.step("Starting the stack"):
            control.start(settings)
            started_here = True
    try:
        with reporter.step("Migrating the database"):
            migrate.upgrade(settings, secrets)
        with reporter.step("Creating JetStream streams"):
            for stream, action in asyncio.run(initialise_bus(settings, secrets)):
                reporter.info(f"stream {stream}: {action}")
        password = admin_password or secrets.admin_initial_password
        with reporter.step("Creating the campus and its first admin"):
            created = asyncio.run(initialise_campus(settings, secrets, password))
    except LmsdError:
        if started_here:
            control.stop(settings)
        raise
    if not start and started_here:
        control.stop(settings)
    return InstallResult(
        settings=settings,
        admin_email=settings.campus.admin_email,
        admin_password=password if created else None,
        started=start,
    )
