"""CPU seconds spent by a running campus's components, read from /proc (Linux).

A component's figure is its process and every descendant (PostgreSQL's backends, for one), plus
what its reaped children spent (`cutime`/`cstime`): a backend that exits between two snapshots
moves its time into its parent's reaped figure, so the difference of two snapshots stays right.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from tests.support import Campus

TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = raw[raw.rindex(")") + 2:].split()  # from field 3 (state) on: comm may hold spaces
        ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        table[int(entry.name)] = (int(fields[1]), ticks / TICK)
    return table


def group_of(component: str) -> str:
    """The tier a component belongs to, for the figures per request."""
    if component == "postgres":
        return "coordinator"
    if component.startswith("postgres-worker-"):
        return "workers"
    if component.startswith("api-"):
        return "API"
    if component == "gateway":
        return "gateway"
    return "events & media"  # NATS, relay, projectors, consumers, media worker, transcoders


def components(campus: Campus) -> dict[str, list[int]]:
    """The running components' pids by tier, from `lmsd status --json`."""
    result = campus.lmsd("status", "--json", timeout=120)  # exit 1 when something is down: the pids still count
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(f"lmsd status --json failed:\n{result.stdout}{result.stderr}") from None
    groups: dict[str, list[int]] = defaultdict(list)
    for row in report["components"]:
        if row.get("pid"):
            groups[group_of(row["name"])].append(int(row["pid"]))
    return dict(groups)


def snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each tier's process trees."""
    table = _processes()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    out: dict[str, float] = {}
    for group, roots in groups.items():
        total, stack = 0.0, list(roots)
        while stack:
            pid = stack.pop()
            if pid in table:
                total += table[pid][1]
                stack.extend(children[pid])
        out[group] = total
    return out


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {group: after[group] - before.get(group, 0.0) for group in after}
