"""Lifecycle benchmark: lmsd's install / up / backup / restore against hand-run baselines.

Run: .venv/bin/python bench/lifecycle.py [--users 50000] [--events 20000] [--media-mb 100]

Baselines, run in the same process on the same data:
  up       — starting the bare servers by hand: `pg_ctl -w start` + nats-server until it answers
             (what lmsd adds: API workers, gateway, health gating, DB bootstrap)
  backup   — `pg_dump -Fc` + `tar` of the JetStream store and media, the script an admin would write
             (what lmsd adds: manifest, checksums, the NATS pause, secrets)
  restore  — `initdb` + start + `createdb` + `pg_restore` + untar by hand
             (what lmsd adds: full verification first, config/secrets, start and health gating)
Prints each time and the ratio lmsd / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmsd.runtime import binaries  # noqa: E402
from lmsd.runtime.process import run_tool  # noqa: E402
from tests.support import app_dsn, nats_connect, new_campus, secrets_of  # noqa: E402


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise SystemExit(f"step failed: {result.args}\n{result.stdout}\n{result.stderr}")


async def seed(c, users: int, events: int, media_mb: int) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(app_dsn(c))
    campus_id = await conn.fetchval("SELECT id FROM campuses")
    await conn.copy_records_to_table(
        "users",
        records=[(uuid.uuid4(), campus_id, f"u{i}@bench.example", f"User {i}", "x" * 97, "learner") for i in range(users)],
        columns=["id", "campus_id", "email", "display_name", "password_hash", "role"],
    )
    await conn.close()
    nc = await nats_connect(c)
    js = nc.jetstream()
    payload = b'{"verb":"completed","object":"lesson"}' * 4
    pending = [js.publish(f"lmsd.bench.lesson.{i % 500}.completed", payload) for i in range(events)]
    for start in range(0, len(pending), 500):
        await asyncio.gather(*pending[start : start + 500])
    await nc.close()
    media = c.data_dir / "media" / "videos"
    media.mkdir(parents=True, exist_ok=True)
    for i in range(max(1, media_mb // 10)):
        (media / f"segment-{i}.m4s").write_bytes(os.urandom(10 * 1024 * 1024))


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit(f"port {port} never opened")


def baseline_up(c, work: Path) -> float:  # type: ignore[no-untyped-def]
    """Start the same PostgreSQL cluster and NATS store by hand (copies, other ports)."""
    pg_copy = work / "pg"
    shutil.copytree(c.data_dir / "postgres", pg_copy, symlinks=True)
    user = "lmsd" if os.geteuid() == 0 else None
    if user:
        subprocess.run(["chown", "-R", f"{user}:{user}", str(pg_copy)], check=True)
    (pg_copy / "lmsd.conf").write_text(
        f"listen_addresses='127.0.0.1'\nport={c.ports['postgres'] + 1000}\nunix_socket_directories=''\n"
    )
    store = work / "js"
    shutil.copytree(c.data_dir / "nats" / "jetstream", store)
    pg_ctl = [str(binaries.postgres_tool("pg_ctl")), "-D", str(pg_copy), "-w", "-l", str(pg_copy / "bench.log")]
    start = time.perf_counter()
    check(run_tool([*pg_ctl, "start"], user=user))
    nats = subprocess.Popen(
        [str(binaries.nats_server()), "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(c.ports["nats"] + 1000)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(c.ports["nats"] + 1000)
    elapsed = time.perf_counter() - start
    nats.terminate()
    nats.wait()
    check(run_tool([*pg_ctl, "-m", "fast", "stop"], user=user))
    return elapsed


def baseline_backup(c, out: Path) -> float:  # type: ignore[no-untyped-def]
    s = secrets_of(c.data_dir)
    env = {**os.environ, "PGPASSWORD": s["postgres_superuser_password"]}
    start = time.perf_counter()
    check(subprocess.run(
        [str(binaries.postgres_tool("pg_dump")), "-h", "127.0.0.1", "-p", str(c.ports["postgres"]), "-U", "postgres",
         "-Fc", "-f", str(out / "db.dump"), "lmsd"], env=env, capture_output=True, text=True))
    with tarfile.open(out / "files.tar", "w") as tar:
        tar.add(c.data_dir / "nats" / "jetstream", arcname="jetstream")
        tar.add(c.data_dir / "media", arcname="media")
    return time.perf_counter() - start


def baseline_restore(c, src: Path, work: Path) -> float:  # type: ignore[no-untyped-def]
    pgdata = work / "restored-pg"
    user = "lmsd" if os.geteuid() == 0 else None
    port = c.ports["postgres"] + 2000
    pwfile = work / "pw"
    pwfile.write_text("bench\n")
    work.chmod(0o755)
    if user:
        shutil.chown(pwfile, user)
    env = {**os.environ, "PGPASSWORD": "bench"}
    start = time.perf_counter()
    pgdata.mkdir(mode=0o700)
    if user:
        shutil.chown(pgdata, user, user)
    check(run_tool([binaries.postgres_tool("initdb"), "-D", pgdata, "-U", "postgres",
                    "--pwfile", pwfile, "--auth=scram-sha-256", "--locale=C", "-E", "UTF8"], user=user))
    (pgdata / "postgresql.conf").open("a").write(f"port={port}\nlisten_addresses='127.0.0.1'\nunix_socket_directories=''\n")
    pg_ctl = [str(binaries.postgres_tool("pg_ctl")), "-D", str(pgdata), "-w", "-l", str(pgdata / "bench.log")]
    check(run_tool([*pg_ctl, "start"], user=user))
    conn = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    check(subprocess.run([str(binaries.postgres_tool("createdb")), *conn, "lmsd"], env=env, capture_output=True, text=True))
    check(subprocess.run([str(binaries.postgres_tool("pg_restore")), *conn, "-d", "lmsd", "--no-owner",
                          str(src / "db.dump")], env=env, capture_output=True, text=True))
    with tarfile.open(src / "files.tar") as tar:
        tar.extractall(work / "files", filter="data")
    elapsed = time.perf_counter() - start
    check(run_tool([*pg_ctl, "-m", "fast", "stop"], user=user))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--media-mb", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lmsd-bench-"))
    work.chmod(0o755)
    c = new_campus(work / "data")
    rows: list[tuple[str, float, float | None, str]] = []
    try:
        t, r = timed(c.install)
        check(r)
        rows.append(("install (fresh, incl. initdb)", t, None, "no baseline: Tutor needs Docker"))
        asyncio.run(seed(c, args.users, args.events, args.media_mb))
        check(c.lmsd("down"))
        t_up, r = timed(c.lmsd, "up")
        check(r)
        check(c.lmsd("down"))
        rows.append(("up to healthy", t_up, baseline_up(c, work / "b-up"), "pg_ctl start + nats-server"))
        check(c.lmsd("up"))
        archive = work / "backup.tar"
        t_b, r = timed(c.lmsd, "backup", "--to", str(archive))
        check(r)
        (work / "b-backup").mkdir()
        rows.append(("backup (running)", t_b, baseline_backup(c, work / "b-backup"), "pg_dump -Fc + tar"))
        check(c.lmsd("down"))
        restored = new_campus(work / "restored")
        restored.ports = c.ports
        t_r, r = timed(restored.lmsd, "restore", "--no-start", str(archive))
        check(r)
        (work / "b-restore").mkdir()
        rows.append(("restore (empty dir)", t_r, baseline_restore(c, work / "b-backup", work / "b-restore"),
                     "initdb + pg_restore + untar"))
    finally:
        c.lmsd("down")
    size = archive.stat().st_size / 1e6
    print(f"\nlmsd lifecycle benchmark — {args.users} users, {args.events} events, {args.media_mb} MB media;"
          f" archive {size:.0f} MB; {os.cpu_count()} cores\n")
    print(f"{'step':32} {'lmsd':>9} {'baseline':>9} {'ratio':>7}  baseline")
    for name, t, base, what in rows:
        ratio = f"{t / base:.2f}x" if base else "-"
        print(f"{name:32} {t:8.2f}s {(f'{base:.2f}s' if base else '-'):>9} {ratio:>7}  {what}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
