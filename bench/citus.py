"""Citus benchmark: the API's hot endpoints and the event backbone end to end, on plain PostgreSQL
and on Citus with 1 and 2 workers, same data, same machine, side by side.

Run: .venv/bin/python bench/citus.py              # the full run: 15 min on 2 cores at load average 10
     .venv/bin/python bench/citus.py --quick      # debugging: smaller data, shorter phases (13 min, same load)
(Most of either is installing: three campuses, two of them Citus; on quiet cores expect 8–10 min.)

Needs Citus in the PostgreSQL lmsd runs (`scripts/citus`). For each configuration, one after the
other, it installs a fresh campus through the product (`lmsd install` in a temporary dir; with
`--citus-workers N` for Citus: a coordinator and N workers on this host), seeds it with the same
`lmsd dev seed --scale S` (deterministic: the same rows, the campus id aside), then:

1. the API benchmark's five hot endpoints (bench/api.py: its request plans and the Go load
   generator; catalog page, course outline, my courses, enrol, submit quiz attempt), each warmed
   up then driven by --concurrency keep-alive clients for --duration seconds through the gateway;
2. the event backbone end to end (bench/events.py: a course with --learners learners; --events
   learning events POSTed in batches of 500 by 4 clients; the clock stops when the progress
   projection has applied the last one);

and reads the CPU seconds of each tier (gateway, API workers, coordinator, workers, events &
media) from /proc over both phases. It prints, per configuration, p50/p99 and req/s per
endpoint, events/s, the ratios to plain PostgreSQL against the issue's limits (hot-endpoint p99
≤ 1.5× plain, events end to end ≥ 0.7× plain, PASS/FAIL), and CPU milliseconds per request and
per 1,000 events by tier (what docs/citus.md sizes a deployment from). The load average is
printed per configuration: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import api as api_bench  # noqa: E402
from bench import cpu  # noqa: E402
from bench import events as events_bench  # noqa: E402
from lmsd.ops.seed import sizes  # noqa: E402
from tests.support import ADMIN_PASSWORD, Campus, app_dsn, free_port_block, new_campus  # noqa: E402

P99_LIMIT = 1.5  # hot-endpoint p99 on Citus ≤ this × plain PostgreSQL (issue 15)
EVENTS_LIMIT = 0.7  # events end to end on Citus ≥ this × plain PostgreSQL (issue 15)
API_WORKERS = 2  # the product's default
TIERS = ("gateway", "API", "coordinator", "workers", "events & media")


@dataclass
class Run:
    workers: int
    install_s: float = 0.0
    seed_s: float = 0.0
    db_bytes: int = 0  # after the seed: the database, shards on the workers included
    load: list[float] = field(default_factory=list)  # 1-minute load average before, after
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    cpu_api: dict[str, float] = field(default_factory=dict)  # CPU seconds by tier, API phase
    cpu_events: dict[str, float] = field(default_factory=dict)  # CPU seconds by tier, events phase

    @property
    def label(self) -> str:
        if not self.workers:
            return "plain PostgreSQL"
        return f"Citus, {self.workers} worker{'s' if self.workers > 1 else ''}"

    @property
    def requests(self) -> int:
        return sum(int(e["requests"]) for e in self.endpoints.values())


def install(work: Path, workers: int, args: argparse.Namespace) -> Campus:
    campus = new_campus(work / f"campus-{workers}", api_workers=API_WORKERS)
    extra: list[str] = []
    if workers:
        campus.ports["citus_workers"] = free_port_block(workers)
        campus.lmsd("config", "set", "postgres.citus_worker_port", str(campus.ports["citus_workers"]), check=True)
        if args.shard_count:
            campus.lmsd("config", "set", "postgres.citus_shard_count", str(args.shard_count), check=True)
        extra = ["--citus-workers", str(workers)]
    result = campus.lmsd(*campus.install_args(), *extra, env={"LMSD_ADMIN_PASSWORD": ADMIN_PASSWORD}, timeout=900)
    if result.returncode:
        raise SystemExit(f"[{workers} workers] install failed:\n{result.stdout}{result.stderr}")
    return campus


async def database_bytes(campus: Campus, citus: bool) -> int:
    conn = await asyncpg.connect(app_dsn(campus))
    try:
        total = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        if citus:
            total += int(await conn.fetchval("SELECT coalesce(sum(shard_size), 0) FROM citus_shards"))
        return total
    finally:
        await conn.close()


async def events_phase(campus: Campus, run: Run, args: argparse.Namespace, groups: dict[str, list[int]]) -> None:
    setup = await events_bench.enrolled(campus, args.learners)
    conn = await asyncpg.connect(app_dsn(campus))
    try:
        before = cpu.snapshot(groups)
        run.events = await events_bench.end_to_end(
            campus, setup, conn, argparse.Namespace(events=args.events, batch=args.batch, clients=args.clients))
        run.cpu_events = cpu.spent(before, cpu.snapshot(groups))
    finally:
        await conn.close()


def measure(work: Path, workers: int, loadgen: Path, args: argparse.Namespace) -> Run:
    run = Run(workers, load=[os.getloadavg()[0]])
    started = time.perf_counter()
    campus = install(work, workers, args)
    try:
        run.install_s = time.perf_counter() - started
        started = time.perf_counter()
        seeded = campus.lmsd("dev", "seed", "--scale", str(args.scale), timeout=3600)
        if seeded.returncode:
            raise SystemExit(f"[{run.label}] seed failed:\n{seeded.stdout}{seeded.stderr}")
        run.seed_s = time.perf_counter() - started
        run.db_bytes = asyncio.run(database_bytes(campus, workers > 0))
        print(f"[{run.label}] installed in {run.install_s:.0f}s, seeded in {run.seed_s:.0f}s", flush=True)
        groups = cpu.components(campus)
        plan = asyncio.run(api_bench.plans(campus.data_dir, campus.url))
        before = cpu.snapshot(groups)
        for name in api_bench.ENDPOINTS:
            run.endpoints[name] = api_bench.drive(
                loadgen, plan[name], work / f"{workers}-{name.replace(' ', '-')}.json",
                args.concurrency, args.duration, args.warmup)
            e = run.endpoints[name]
            print(f"[{run.label}] {name}: {e['rps']:.0f} req/s, p50 {e['p50_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms",
                  flush=True)
        run.cpu_api = cpu.spent(before, cpu.snapshot(groups))
        asyncio.run(events_phase(campus, run, args, groups))
        print(f"[{run.label}] events end to end: {run.events['e2e_rate']:,.0f}/s", flush=True)
        run.load.append(os.getloadavg()[0])
        return run
    finally:
        campus.lmsd("down", timeout=300)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(runs: list[Run], args: argparse.Namespace) -> list[str]:
    base = runs[0]
    n = sizes(args.scale)
    lines = [
        f"lmsd on Citus — {os.cpu_count()} CPUs; data: lmsd dev seed --scale {args.scale:g} ({n['users']:,} users,"
        f" {n['courses']:,} courses, {n['enrolments']:,} enrolments); {API_WORKERS} API workers; through the gateway",
        f"API: {args.concurrency} clients × {args.duration:g}s per endpoint (after {args.warmup:g}s warm-up);"
        f" events: {args.events:,} in batches of {args.batch}, {args.clients} clients;"
        f" shards per table: {args.shard_count or 'the default (32)'}",
        f"limits: hot-endpoint p99 ≤ {P99_LIMIT}× plain PostgreSQL; events end to end ≥ {EVENTS_LIMIT}× plain",
        "",
    ]
    head = f"{'':22}" + "".join(f" | {r.label:38}" for r in runs)
    lines += [head, f"{'endpoint':22}" + "".join(
        f" | {'req/s':>6} {'p50':>8} {'p99':>8} {'p99 ×':>6} {'':>4}" for _ in runs)]
    failed = 0
    for name in api_bench.ENDPOINTS:
        row = f"{name:22}"
        for r in runs:
            e, ratio = r.endpoints[name], r.endpoints[name]["p99_ms"] / base.endpoints[name]["p99_ms"]
            mark = "" if r is base else verdict(ratio <= P99_LIMIT)
            failed += mark == "FAIL"
            row += f" | {e['rps']:6.0f} {e['p50_ms']:6.1f}ms {e['p99_ms']:6.1f}ms {ratio:5.2f}× {mark:>4}"
        lines.append(row)
    row = f"{'events end to end':22}"
    for r in runs:
        ratio = r.events["e2e_rate"] / base.events["e2e_rate"]
        mark = "" if r is base else verdict(ratio >= EVENTS_LIMIT)
        failed += mark == "FAIL"
        row += f" | {r.events['e2e_rate']:8,.0f} events/s {'':5}{ratio:5.2f}× {mark:>4}"
    lines.append(row)
    lines.append(f"{'  (API accepted/s)':22}" + "".join(f" | {r.events['api_rate']:8,.0f}{'':30}" for r in runs))
    lines += ["", "CPU ms per request (API phase, all five endpoints) and per 1,000 events (events phase), by tier:"]
    lines.append(f"{'tier':22}" + "".join(f" | {'per request':>12} {'per 1k events':>14}{'':10}" for _ in runs))
    for tier in (*TIERS, "total"):
        row = f"{tier:22}"
        for r in runs:
            api_s = sum(r.cpu_api.values()) if tier == "total" else r.cpu_api.get(tier, 0.0)
            ev_s = sum(r.cpu_events.values()) if tier == "total" else r.cpu_events.get(tier, 0.0)
            row += f" | {1000 * api_s / r.requests:10.2f}ms {1000 * ev_s / r.events['events'] * 1000:12.0f}ms{'':10}"
        lines.append(row)
    lines += ["", "install / seed / database size after the seed / load average (1 min) before → after:"] + [
        f"  {r.label:22} {r.install_s:5.0f}s / {r.seed_s:4.0f}s / {r.db_bytes / 1e6:6.0f} MB / {r.load[0]:.1f} → {r.load[-1]:.1f}"
        for r in runs]
    checks = len(api_bench.ENDPOINTS) * (len(runs) - 1) + len(runs) - 1
    lines.append(f"\nlimits: {checks - failed} of {checks} checks PASS" + (f", {failed} FAIL" if failed else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="debugging: scale 0.01, 3 s per endpoint, 20,000 events")
    parser.add_argument("--scale", type=float, help="lmsd dev seed --scale (default 0.02: 4,000 users, 400 courses, 40,000 enrolments)")
    parser.add_argument("--duration", type=float, help="seconds per endpoint (default 8)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per endpoint (default 2)")
    parser.add_argument("--events", type=int, help="learning events end to end (default 30,000)")
    parser.add_argument("--concurrency", type=int, default=8, help="load generator clients (bench/api.py's default)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4, help="event-posting clients")
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--shard-count", type=int, default=0, help="postgres.citus_shard_count (0: the product's default)")
    parser.add_argument("--workers", default="0,1,2", help="configurations, as Citus worker counts (0 = plain)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    defaults = (0.01, 3.0, 1.0, 20_000) if args.quick else (0.02, 8.0, 2.0, 30_000)
    for key, value in zip(("scale", "duration", "warmup", "events"), defaults, strict=True):
        if getattr(args, key) is None:
            setattr(args, key, value)
    configs = [int(w) for w in args.workers.split(",")]
    if not configs or configs[0] != 0:
        parser.error("--workers must start with 0: the ratios are to plain PostgreSQL")
    work = Path(tempfile.mkdtemp(prefix="lmsd-citus-bench-"))
    work.chmod(0o755)
    started = time.perf_counter()
    try:
        loadgen = api_bench.build_loadgen(work)
        runs = [measure(work, workers, loadgen, args) for workers in configs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n(whole run: {time.perf_counter() - started:.0f}s)\n")
    print("\n".join(report(runs, args)))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "runs": [asdict(r) for r in runs]}, indent=1))


if __name__ == "__main__":
    main()
