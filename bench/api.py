"""API benchmark: hot endpoints at 1× and 10× data, through the real gateway, side by side.

Run: .venv/bin/python bench/api.py [--scale 1.0] [--factor 10] [--concurrency 8] [--duration 15]

For each data size it installs a fresh campus (embedded profile), seeds it with `lmsd dev seed`
(scale 1 = 200k users, 20k courses, 2M enrolments), then drives five endpoints with the Go load
generator in bench/loadgen (keep-alive clients, fixed duration): catalog page, course outline,
my courses, enrol, submit quiz attempt. Prints requests/s and p50/p99 per endpoint, and the
p99 ratio of the large data set over the small one (the baseline). Loopback only, bounded time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmsd import credentials, pagination  # noqa: E402
from lmsd.db.dsn import app_dsn, ssl_arg  # noqa: E402
from lmsd.identity.tokens import TokenIssuer  # noqa: E402
from lmsd.policy import Identity  # noqa: E402
from lmsd.settings import load_settings  # noqa: E402
from tests.support import Campus, new_campus  # noqa: E402

ENDPOINTS = ("catalog page", "course outline", "my courses", "enrol", "submit quiz attempt")


def build_loadgen(work: Path) -> Path:
    out = work / "loadgen"
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=ROOT / "bench" / "loadgen", check=True)
    return out


async def plans(data_dir: Path, base: str, n: int = 2000) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    settings = load_settings(data_dir)
    secrets = credentials.load(data_dir)
    issuer = TokenIssuer(secrets, issuer=settings.portal_url.rstrip("/"))
    campus = uuid.UUID(settings.campus.id)
    conn = await asyncpg.connect(app_dsn(settings, secrets), ssl=ssl_arg(settings))
    rng = random.Random(7)
    try:
        learners = await conn.fetch(
            "SELECT id, email, display_name FROM users WHERE role = 'learner' ORDER BY random() LIMIT $1", n
        )
        courses = [r["id"] for r in await conn.fetch(
            "SELECT id FROM courses WHERE status = 'published' ORDER BY random() LIMIT $1", n)]
        pairs = await conn.fetch(
            """SELECT e.user_id, u.email, u.display_name, q.id AS quiz_id,
                      array_agg(qs.id::text ORDER BY qs.position) AS questions
               FROM (SELECT * FROM enrolments TABLESAMPLE SYSTEM (5) LIMIT $1) e
               JOIN users u ON u.campus_id = e.campus_id AND u.id = e.user_id
               JOIN quizzes q ON q.campus_id = e.campus_id AND q.course_id = e.course_id
               JOIN questions qs ON qs.campus_id = q.campus_id AND qs.quiz_id = q.id
               GROUP BY e.user_id, u.email, u.display_name, q.id""",
            n,
        )
        enrolled = {(r["user_id"], r["course_id"]) for r in await conn.fetch(
            "SELECT user_id, course_id FROM enrolments WHERE user_id = ANY($1::uuid[])", [r["id"] for r in learners])}
    finally:
        await conn.close()

    def auth(uid: uuid.UUID, email: str, name: str) -> dict[str, str]:
        token = issuer.issue(Identity(uid, campus, email, name, "learner"))
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    headers = [auth(r["id"], r["email"], r["display_name"]) for r in learners]
    out: dict[str, list[dict]] = {name: [] for name in ENDPOINTS}  # type: ignore[type-arg]
    for i in range(n):
        h = headers[i % len(headers)]
        after = pagination.encode(uuid.UUID(int=rng.getrandbits(128), version=4))
        out["catalog page"].append({"method": "GET", "url": f"{base}/api/v1/courses?limit=20&cursor={after}", "headers": h})
        out["course outline"].append({"method": "GET", "url": f"{base}/api/v1/courses/{courses[i % len(courses)]}", "headers": h})
        out["my courses"].append({"method": "GET", "url": f"{base}/api/v1/me/courses", "headers": h})
        learner = learners[i % len(learners)]
        course = courses[(i * 31) % len(courses)]
        if (learner["id"], course) not in enrolled:
            out["enrol"].append({"method": "POST", "url": f"{base}/api/v1/courses/{course}/enrol", "headers": headers[i % len(headers)]})
    for r in pairs:
        body = {"answers": {q: rng.randrange(3) for q in r["questions"]}}
        out["submit quiz attempt"].append({
            "method": "POST", "url": f"{base}/api/v1/quizzes/{r['quiz_id']}/attempts",
            "headers": auth(r["user_id"], r["email"], r["display_name"]), "body": body,
        })
    return out


def drive(loadgen: Path, requests: list[dict], path: Path, concurrency: int, duration: float,  # type: ignore[type-arg]
          warmup: float = 3) -> dict:  # type: ignore[type-arg]
    """One endpoint's figures (req/s, p50/p99 ms, statuses): its plan written to ``path``, a warm-up
    run (caches, connection pools), then the measured run. 409 (enrolled already) counts as answered."""
    path.write_text(json.dumps(requests))
    common = [str(loadgen), "-plan", str(path), "-c", str(concurrency), "-ok", "200,201,409"]
    subprocess.run([*common, "-d", f"{warmup:g}s"], capture_output=True, check=True)
    out = subprocess.run([*common, "-d", f"{duration:g}s"], capture_output=True, text=True, check=True)
    figures: dict = json.loads(out.stdout)  # type: ignore[type-arg]
    return figures


def prepare(label: str, scale: float, work: Path) -> Campus:
    """Install and seed a campus once; a later run with the same --work reuses it."""
    marker = work / f"{label}.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        campus = Campus(Path(saved["data_dir"]), saved["ports"])
        up = campus.lmsd("up")
        if up.returncode:
            raise SystemExit(up.stdout + up.stderr)
        return campus
    campus = new_campus(work / label)
    result = campus.install()
    if result.returncode:
        raise SystemExit(result.stdout + result.stderr)
    started = time.perf_counter()
    seeded = campus.lmsd("dev", "seed", "--scale", str(scale), timeout=7200)
    if seeded.returncode:
        raise SystemExit(seeded.stdout + seeded.stderr)
    print(f"[{label}] seeded scale {scale} in {time.perf_counter() - started:.0f}s", flush=True)
    marker.write_text(json.dumps({"data_dir": str(campus.data_dir), "ports": campus.ports}))
    return campus


def run_size(label: str, scale: float, work: Path, loadgen: Path, args: argparse.Namespace) -> dict[str, dict]:  # type: ignore[type-arg]
    campus = prepare(label, scale, work)
    if args.prepare_only:
        campus.lmsd("down")
        return {}
    try:
        plan = asyncio.run(plans(campus.data_dir, campus.url))
        stats = {}
        for name in ENDPOINTS:
            stats[name] = drive(loadgen, plan[name], work / f"{label}-{name.replace(' ', '-')}.json",
                                args.concurrency, args.duration)
            print(f"[{label}] {name}: {stats[name]}", flush=True)
        return stats
    finally:
        campus.lmsd("down")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="data size of the baseline run (1.0 = 200k users)")
    parser.add_argument("--factor", type=float, default=10.0, help="the large run is scale × factor")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--work", type=Path, help="keep campuses here and reuse them on the next run")
    parser.add_argument("--prepare-only", action="store_true", help="install and seed, measure nothing")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lmsd-api-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    try:
        loadgen = build_loadgen(work)
        small = run_size("1x", args.scale, work, loadgen, args)
        large = run_size(f"{args.factor:g}x", args.scale * args.factor, work, loadgen, args)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.prepare_only:
        return
    print(f"\nlmsd API benchmark — {args.concurrency} clients × {args.duration}s per endpoint, through the gateway;"
          f" data 1× = scale {args.scale} (200k users/20k courses/2M enrolments at 1.0), large = {args.factor:g}×\n")
    print(f"{'endpoint':22} {'req/s 1x':>9} {'p50 1x':>8} {'p99 1x':>8} | {'req/s big':>9} {'p50 big':>8} {'p99 big':>8} | {'p99 ratio':>9}")
    for name in ENDPOINTS:
        a, b = small[name], large[name]
        ratio = b["p99_ms"] / a["p99_ms"] if a["p99_ms"] else float("nan")
        print(f"{name:22} {a['rps']:9.0f} {a['p50_ms']:7.1f}ms {a['p99_ms']:7.1f}ms | {b['rps']:9.0f} {b['p50_ms']:7.1f}ms"
              f" {b['p99_ms']:7.1f}ms | {ratio:8.2f}x")
        if a["errors"] or b["errors"]:
            print(f"  ! non-success responses: 1x {a['status']}, big {b['status']}")


if __name__ == "__main__":
    main()
