"""Event backbone benchmark: end-to-end learning events per second and commit→projection lag,
side by side with raw nats-py JetStream publishing on the same machine and the same nats-server.

Run: .venv/bin/python bench/events.py [--events 100000] [--batch 500] [--clients 4] [--lag-seconds 20]

1. Installs a fresh campus (embedded profile) and enrols --learners learners in a course.
2. Baseline: raw JetStream publish throughput with nats-py into a scratch file stream
   (BENCH_RAW) — same server, same payloads (encoded lmsd events), Nats-Msg-Id on each, acks
   awaited, windows of 1000 publishes in flight (the fastest way nats-py publishes with acks).
3. End to end: --clients concurrent clients POST batches of --batch events (as xAPI-style
   clients send them) to /api/v1/learning/events through the gateway; the clock stops when the
   progress projection has applied the last one (API → outbox → relay → JetStream → consumer →
   progress table). events/s = events / that time; ratio = that / raw publish rate.
4. Lag: at half the measured end-to-end rate for --lag-seconds, p50/p99 of
   (consumer_applied.applied_at − outbox.created_at) per event for the progress projection
   (both are transaction start times on the database's clock: the write's and the consumer's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from nats.js.api import StorageType, StreamConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmsd import credentials  # noqa: E402
from lmsd.contracts.v1 import envelope_pb2, learning_pb2  # noqa: E402
from lmsd.identity.tokens import TokenIssuer  # noqa: E402
from lmsd.policy import Identity  # noqa: E402
from lmsd.settings import load_settings  # noqa: E402
from tests import learning  # noqa: E402
from tests.api import Person  # noqa: E402
from tests.support import Campus, app_dsn, nats_connect, new_campus  # noqa: E402


def sample_payload() -> bytes:
    ev = envelope_pb2.Event(
        id=str(uuid.uuid4()), campus_id=str(uuid.uuid4()), aggregate="enrolment", aggregate_id=str(uuid.uuid4()),
        version=42, occurred_at_us=1_764_000_000_000_000, recorded_at_us=1_764_000_000_000_000, actor_id=str(uuid.uuid4()),
    )
    ev.video_watched.CopyFrom(learning_pb2.VideoWatched(
        course_id=str(uuid.uuid4()), lesson_id=str(uuid.uuid4()), video_id=str(uuid.uuid4()),
        segments=[learning_pb2.Segment(start_ms=1000, end_ms=6000)],
    ))
    return ev.SerializeToString()


async def raw_publish(campus: Campus, count: int, window: int = 1000) -> float:
    nc = await nats_connect(campus)
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name="BENCH_RAW", subjects=["bench.raw.>"], storage=StorageType.FILE, duplicate_window=120))
        payload = sample_payload()
        started = time.perf_counter()
        for offset in range(0, count, window):
            await asyncio.gather(*(
                js.publish(f"bench.raw.{i % 64}", payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
                for i in range(offset, min(count, offset + window))
            ))
        elapsed = time.perf_counter() - started
        await js.delete_stream("BENCH_RAW")
        return count / elapsed
    finally:
        await nc.close()


def batches(s: learning.Setup, size: int, start: int) -> Any:
    lessons = [s.lessons["text"], s.lessons["text2"], s.lessons["quiz"]]
    n = start
    while True:
        idx = n % len(s.learners)
        events = []
        for i in range(size):
            k = (n + i) % 4
            if k == 3:
                at = ((n * size + i) * 13) % 3_600_000
                events.append({"enrolment_id": s.enrolments[idx], "type": "video_watched", "lesson_id": s.lessons["video"], "segments": [[at, at + 5000]]})
            else:
                events.append({"enrolment_id": s.enrolments[idx], "type": "lesson_started" if k else "lesson_completed", "lesson_id": lessons[k % 3]})
        yield s.learners[idx], {"events": events}
        n += 1


async def applied(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(applied), 0) FROM event_consumers WHERE name = 'learning'") or 0)


async def wait_applied(conn: asyncpg.Connection, target: int, timeout: float = 900) -> tuple[float, float]:
    """When the projector has applied ``target`` events, and when the relay had published them
    all (the first time no aggregate is ahead of its published version; called once the API
    has accepted everything)."""
    deadline = time.monotonic() + timeout
    relayed = 0.0
    while time.monotonic() < deadline:
        if not relayed and not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM event_aggregates WHERE version > published_version)"):
            relayed = time.perf_counter()
        if await applied(conn) >= target:
            return relayed or time.perf_counter(), time.perf_counter()
        await asyncio.sleep(0.02)
    raise SystemExit(f"projection did not reach {target} events in {timeout}s")


async def post(c: httpx.AsyncClient, who: Any, body: dict[str, Any]) -> None:
    for _ in range(20):
        r = await c.post("/api/v1/learning/events", headers=who.h, json=body)
        if r.status_code == 202:
            return
        if r.status_code == 429:
            await asyncio.sleep(float(r.headers.get("retry-after", "0.2")))
            continue
        raise SystemExit(f"API refused a batch: {r.status_code} {r.text[:300]}")
    raise SystemExit("API kept refusing a batch (429)")


async def end_to_end(campus: Campus, s: learning.Setup, conn: asyncpg.Connection, args: argparse.Namespace) -> dict[str, float]:
    base = await applied(conn)
    total = args.events // args.batch * args.batch
    source = batches(s, args.batch, 0)
    todo = [next(source) for _ in range(total // args.batch)]
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(base_url=campus.url, timeout=120, limits=limits) as c:
        queue: asyncio.Queue[tuple[Any, dict[str, Any]]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                who, body = queue.get_nowait()
                await post(c, who, body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.clients)))
        accepted = time.perf_counter()
        relayed, done = await wait_applied(conn, base + total)
    return {"events": total, "api_rate": total / (accepted - started), "e2e_rate": total / (done - started),
            "relay_rate": total / (relayed - started), "seconds": done - started}


async def lag(campus: Campus, s: learning.Setup, conn: asyncpg.Connection, rate: float, args: argparse.Namespace) -> dict[str, float]:
    first_seq = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM outbox"))
    base = await applied(conn)
    per_second = rate / args.batch
    source = batches(s, args.batch, 10_000_000)
    sent = 0
    async with httpx.AsyncClient(base_url=campus.url, timeout=120) as c:
        started = time.perf_counter()
        tasks = []
        n = 0
        while time.perf_counter() - started < args.lag_seconds:
            due = started + n / per_second
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            who, body = next(source)
            tasks.append(asyncio.create_task(post(c, who, body)))
            sent += args.batch
            n += 1
        await asyncio.gather(*tasks)
        await wait_applied(conn, base + sent)
    row = await conn.fetchrow(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99, max(l) AS worst, count(*) AS n
           FROM (SELECT EXTRACT(EPOCH FROM a.applied_at - o.created_at) * 1000 AS l
                 FROM outbox o JOIN consumer_applied a ON a.campus_id = o.campus_id AND a.event_id = o.id
                 WHERE a.consumer = 'learning' AND o.seq > $1 AND o.aggregate = 'enrolment') x""",
        first_seq,
    )
    assert row is not None
    return {"rate": sent / args.lag_seconds, "events": sent, "p50_ms": float(row["p50"]), "p99_ms": float(row["p99"]),
            "max_ms": float(row["worst"]), "measured": int(row["n"])}


async def more_learners(campus: Campus, c: httpx.AsyncClient, s: learning.Setup, count: int) -> None:
    """Learners beyond the gateway's sign-in budget: created and enrolled by the admin through the
    API, their access tokens issued with the campus key (as `lmsd dev seed` users are)."""
    settings = load_settings(campus.data_dir)
    issuer = TokenIssuer(credentials.load(campus.data_dir), issuer=settings.portal_url.rstrip("/"))
    for n in range(count):
        email = f"bench-{n}-{uuid.uuid4().hex[:6]}@a.example"
        r = await c.post("/api/v1/users", headers=s.admin.h, json={"email": email, "display_name": f"Bench {n}", "role": "learner", "password": learning.PASSWORD})
        assert r.status_code == 201, r.text
        user = r.json()
        r = await c.post(f"/api/v1/courses/{s.course['id']}/enrolments", headers=s.admin.h, json={"user_id": user["id"]})
        assert r.status_code == 201, r.text
        token = issuer.issue(Identity(uuid.UUID(user["id"]), uuid.UUID(settings.campus.id), email, f"Bench {n}", "learner"))
        s.learners.append(Person(user["id"], email, token, "learner"))
        s.enrolments.append(r.json()["id"])


async def enrolled(campus: Campus, learners: int) -> learning.Setup:
    """A published course (text, video and quiz lessons) with ``learners`` learners enrolled."""
    async with learning.client(campus) as c:
        s = await learning.setup(c, learners=min(learners, 10))
        await more_learners(campus, c, s, learners - len(s.learners))
    return s


async def run(campus: Campus, args: argparse.Namespace) -> dict[str, Any]:
    s = await enrolled(campus, args.learners)
    raw = await raw_publish(campus, args.events)
    print(f"raw nats-py JetStream publish: {raw:,.0f} msgs/s", flush=True)
    conn = await asyncpg.connect(app_dsn(campus))
    try:
        e2e = await end_to_end(campus, s, conn, args)
        print(f"end to end: {e2e['e2e_rate']:,.0f} events/s (API accepted {e2e['api_rate']:,.0f}/s,"
              f" relay published {e2e['relay_rate']:,.0f}/s)", flush=True)
        lagged = await lag(campus, s, conn, e2e["e2e_rate"] / 2, args)
    finally:
        await conn.close()
    return {"raw_publish_rate": raw, "end_to_end": e2e, "lag": lagged, "ratio": e2e["e2e_rate"] / raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lmsd-events-bench-"))
    work.chmod(0o755)
    campus = new_campus(work / "campus")
    try:
        result = campus.install()
        if result.returncode:
            raise SystemExit(result.stdout + result.stderr)
        out = asyncio.run(run(campus, args))
    finally:
        campus.lmsd("down")
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    e2e, lagged = out["end_to_end"], out["lag"]
    print(f"\nlmsd event backbone — {e2e['events']:,} events in batches of {args.batch}, {args.clients} clients, through the gateway\n")
    print(f"{'raw nats-py JetStream publish (baseline)':48} {out['raw_publish_rate']:>10,.0f} msgs/s")
    print(f"{'end to end: API → outbox → relay → projection':48} {e2e['e2e_rate']:>10,.0f} events/s"
          f"  (API accepted {e2e['api_rate']:,.0f}/s, relay {e2e['relay_rate']:,.0f}/s)")
    print(f"{'ratio end to end / raw publish':48} {out['ratio']:>10.2f}x")
    print(f"{'lag commit → projection at ' + format(lagged['rate'], ',.0f') + ' events/s':48}"
          f" p50 {lagged['p50_ms']:.0f} ms, p99 {lagged['p99_ms']:.0f} ms, max {lagged['max_ms']:.0f} ms"
          f" ({lagged['measured']:,} events)")


if __name__ == "__main__":
    main()
