"""`lmsd status`: one row per component, from real probes plus the supervisor's records."""

from __future__ import annotations

import asyncio
from typing import Any

from lmsd import credentials
from lmsd.errors import LmsdError, OperationFailed
from lmsd.events.connection import DATABASE_ERRORS
from lmsd.ops import cluster, events
from lmsd.ops.backup import is_installed
from lmsd.runtime import components, control
from lmsd.settings import Settings

# What `lmsd status` says on a Citus campus, where the settings refuse postgres.replicas: reads go to
# the coordinator (read-your-writes holds); per-node streaming replicas are docs/citus.md's next step.
CITUS_REPLICAS = "read replicas: not supported with Citus yet"


async def collect(settings: Settings) -> dict[str, Any]:
    if not is_installed(settings.data_dir):
        raise OperationFailed(f"no campus is installed in {settings.data_dir}: run `lmsd install`")
    secrets = credentials.load(settings.data_dir)
    comps = components.build(settings, secrets)
    pid = control.running_pid(settings)
    state = control.read_state(settings) if pid is not None else {}
    records = state.get("components", {})
    probes = [await c.probe() for c in comps]  # one at a time, so latencies are not inflated
    rows = []
    for comp, probe in zip(comps, probes, strict=True):
        record = records.get(comp.name, {})
        detail = probe.detail
        if not probe.ok and pid is None:
            detail = "lmsd is not running (start it with `lmsd up`)"
        elif not probe.ok and record.get("state") in ("backoff", "starting") and record.get("last_exit"):
            detail = f"{detail}; last {record['last_exit']}, restarting"
        row = {
            "name": comp.name,
            "label": comp.label,
            "required": comp.required,
            "ok": probe.ok,
            "state": record.get("state", "stopped" if pid is None else "unknown"),
            "pid": record.get("pid"),
            "restarts": record.get("restarts", 0),
            "version": probe.version,
            "latency_ms": round(probe.latency_ms, 1),
            "detail": detail,
        }
        if comp.name.startswith("postgres-replica-"):
            row["lag_ms"] = probe.lag_ms  # None when down or unknown; other rows keep their shape
        rows.append(row)
    if settings.postgres.citus_enabled:
        await cluster.add_shard_counts(settings, secrets, rows)
        for row in rows:
            if row["name"] == "postgres":
                row["detail"] = "; ".join(filter(None, [row["detail"], CITUS_REPLICAS]))
    healthy = pid is not None and all(r["ok"] for r in rows if r["required"])
    bus: dict[str, Any] | None = None
    if all(r["ok"] for r in rows if r["name"] in ("postgres", "nats")):
        try:
            bus = await asyncio.wait_for(events.summary(settings, secrets), 5)
        except (LmsdError, TimeoutError, *DATABASE_ERRORS) as exc:
            # e.g. a Citus worker away: the coordinator answers, the event tables on it do not
            bus = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return {
        "healthy": healthy,
        "campus": {"name": settings.campus.name, "id": settings.campus.id},
        "portal_url": settings.portal_url,
        "data_dir": str(settings.data_dir),
        "supervisor": {"pid": pid, "state": state.get("state", "stopped")},
        "components": rows,
        "events": bus,
    }
