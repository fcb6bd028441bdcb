"""Portal: the campus admin's health page (``/admin/health``): what ``lmsd status`` shows.

The status collection is the operator's code (``lmsd.ops.status.collect``), which a capability
does not import: the composition root (``lmsd.app``) puts it in the app's state as
``status_report``. Without it, or without a supervisor (an API run on its own, tests), the page
says so; the database is checked through this worker's own session either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from lmsd.errors import LmsdError
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import PortalPages, admin_page
from lmsd.server.session import DbSession, database_answers

HEALTH_TIMEOUT_S = 20

StatusReport = Callable[[Any], Awaitable[dict[str, Any]]]
"""The settings → what ``lmsd status`` shows (``app.state.status_report``)."""


async def _health(request: Request[Any, Any, State], db: DbSession) -> dict[str, Any]:
    """What ``lmsd status`` shows; without a supervisor (an API run on its own, tests) a report
    that says so, with the database checked through this worker's own connection."""
    collect: StatusReport | None = getattr(request.app.state, "status_report", None)
    try:
        if collect is None:
            raise LmsdError("the status collection is not wired into this application")
        report = await asyncio.wait_for(collect(request.app.state.settings), HEALTH_TIMEOUT_S)
    except (LmsdError, TimeoutError, OSError) as exc:
        report = {"healthy": False, "supervisor": {"pid": None, "state": "stopped"}, "components": [],
                  "events": None, "error": str(exc)}
    report["database_ok"] = await database_answers(db)
    return report


def _events_text(bus: dict[str, Any] | None) -> str:
    if bus is None:
        return _("Not checked: PostgreSQL or NATS does not answer.")
    if "error" in bus:
        return _("Unknown (%(error)s)") % {"error": bus["error"]}
    relay = bus["relay"]
    behind = ", ".join(
        _("%(name)s %(count)s behind") % {"name": c["name"], "count": c["pending"] + c["unacknowledged"]}
        for c in bus["consumers"]
    )
    return _("Relay backlog %(backlog)s (oldest %(lag)s s); consumers: %(consumers)s; dead letters: %(dead)s") % {
        "backlog": relay["backlog"], "lag": f"{relay['lag_s']:.1f}", "consumers": behind or "-",
        "dead": bus["dead_letters"],
    }


def _state_names() -> dict[str, str]:
    return {
        "running": _("running"), "starting": _("starting"), "stopping": _("stopping"), "stopped": _("stopped"),
        "failed": _("failed"), "backoff": _("restarting"), "paused": _("paused"), "unknown": _("unknown"),
    }


class HealthPages(PortalPages):
    path = "/"

    @get("/admin/health")
    async def health(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await admin_page(request, db)
        report = await _health(request, db)
        supervised = report["supervisor"]["pid"] is not None
        states = _state_names()
        rows = [
            {
                **row,
                "state_text": states.get(row["state"], row["state"]) if supervised else _("not running under the supervisor"),
            }
            for row in report["components"]
        ]
        replicas = [r for r in rows if r["name"].startswith("postgres-replica-")]
        return page.render(
            "admin/health.html", title=_("Health"), report=report, rows=rows, replicas=replicas, supervised=supervised,
            events=_events_text(report.get("events")),
        )
