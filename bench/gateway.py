"""Gateway benchmark: the same upstream reached (a) directly, (b) through Debian's nginx as a plain
reverse proxy, (c) through lmsd-gateway with JWT verification and rate limiting on.

Run: .venv/bin/python bench/gateway.py [--duration 10] [--connections 64] [--rate-connections 8]
                                       [--delay-ms 4] [--rounds 3] [--workers N] [--no-api]

Everything runs on loopback, side by side in one run, with the same load tool (wrk) and the same
request (it always carries a real signed access token; only (c) checks it):

  trivial  — an nginx `return 200` endpoint as the upstream, so the proxies' own cost is visible
  api      — the real API (`GET /api/v1/me`, one worker of an installed campus), unless --no-api

Two wrk runs per target: a saturating one (--connections, req/s) and a fixed-pace one below
saturation (--rate-connections connections, each waiting --delay-ms between requests, p50/p99).
With --rounds R the three targets are measured R times, interleaved (a b c a b c …), and each
figure is the median of its R values, so that load from other jobs on a shared machine hits all
targets alike. nginx gets --workers worker processes and lmsd-gateway as many serving threads
(default: one per CPU for both). The load average is printed before and after.
nginx and wrk come from Debian (installed with apt-get when missing); nothing else is fetched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmsd.runtime import binaries  # noqa: E402
from tests.support import ADMIN_PASSWORD, free_port_block, new_campus  # noqa: E402

WRK_SCRIPT = r"""
local token = os.getenv("BENCH_TOKEN")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
wrk.headers["Authorization"] = "Bearer " .. token
if delay_ms > 0 then
  function delay() return delay_ms end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_tools() -> None:
    missing = [pkg for pkg, exe in (("nginx", "nginx"), ("wrk", "wrk")) if not shutil.which(exe) and not Path(f"/usr/sbin/{exe}").exists()]
    if not missing:
        return
    print(f"installing {' '.join(missing)} from Debian (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def start_nginx(stack: ExitStack, work: Path, name: str, server_block: str, workers: str) -> None:
    prefix = work / name
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {prefix}/logs/access.log;
  keepalive_requests 1000000;
  {server_block}
}}
""")
    proc = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-c", str(conf), "-g", "daemon off; user root;"])
    stack.callback(lambda: (proc.terminate(), proc.wait(10)))


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int


def wrk(url: str, script: Path, token: str, connections: int, duration: int, delay_ms: int) -> dict[str, float]:
    threads = 1 if connections < 4 else 2
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_DELAY_MS": str(delay_ms)}
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(script), url],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    data: dict[str, float] = json.loads(line[6:])
    return data


def measure(url: str, script: Path, token: str, args: argparse.Namespace) -> Result:
    sat = wrk(url, script, token, args.connections, args.duration, 0)
    paced = wrk(url, script, token, args.rate_connections, args.duration, args.delay_ms)
    return Result(
        rps=sat["requests"] / (sat["duration_us"] / 1e6),
        p50_ms=paced["p50_us"] / 1000,
        p99_ms=paced["p99_us"] / 1000,
        non2xx=int(sat["non2xx"] + paced["non2xx"] + sat["errors"] + paced["errors"]),
    )


def gateway_env(listen: int, upstream: str, issuer: str, jwks_url: str, workers: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "LMSD_GATEWAY_LISTEN": f"127.0.0.1:{listen}",
        "LMSD_GATEWAY_UPSTREAMS": upstream,
        "LMSD_GATEWAY_JWKS_URL": jwks_url,
        "LMSD_GATEWAY_JWT_ISSUER": issuer,
        # Limits stay on (every request pays for the check) but cannot throttle the benchmark.
        "LMSD_GATEWAY_RATE_READ": "1000000/s:1000000",
        "LMSD_GATEWAY_RATE_WRITE": "1000000/s:1000000",
        "LMSD_GATEWAY_THREADS": str(workers),  # as many as nginx has workers
        "LMSD_LOG": "info",
    }


def start_gateway(stack: ExitStack, env: dict[str, str], log: Path) -> None:
    handle = log.open("w")
    proc = subprocess.Popen([binaries.rust_binary("lmsd-gateway")], env=env, stderr=handle)
    stack.callback(lambda: (proc.terminate(), proc.wait(10), handle.close()))
    wait_http(f"http://{env['LMSD_GATEWAY_LISTEN']}/healthz")


def nginx_proxy_block(port: int, upstream: str) -> str:
    return f"""
  upstream app {{ server {upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Request-Id $request_id;
    }}
  }}"""


def check_auth_is_on(gateway_url: str, token: str) -> None:
    ok = httpx.get(gateway_url, headers={"authorization": f"Bearer {token}"})
    refused = httpx.get(gateway_url, headers={"authorization": "Bearer not-a-token"})
    if ok.status_code != 200 or refused.status_code != 401:
        raise SystemExit(f"gateway not verifying tokens as expected: {ok.status_code}/{refused.status_code}")


def scenario_trivial(stack: ExitStack, work: Path, script: Path, args: argparse.Namespace) -> dict[str, Result]:
    base = free_port_block(3)
    up, nginx_port, gw_port = base, base + 1, base + 2
    key = Ed25519PrivateKey.generate()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    (work / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "EdDSA"}]}))
    upstream_block = f"""
  server {{
    listen 127.0.0.1:{up};
    access_log off;
    location = /api/v1/auth/jwks.json {{ default_type application/json; alias {work}/jwks.json; }}
    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}"""
    start_nginx(stack, work, "upstream", upstream_block, "1")
    start_nginx(stack, work, "proxy", nginx_proxy_block(nginx_port, f"127.0.0.1:{up}"), str(args.workers))
    issuer = "http://bench.test"
    now = int(time.time())
    token = jwt.encode(
        {"iss": issuer, "aud": "lmsd", "sub": str(uuid.uuid4()), "campus": str(uuid.uuid4()), "role": "learner",
         "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex},
        key, algorithm="EdDSA", headers={"kid": "bench"},
    )
    env = gateway_env(gw_port, f"http://127.0.0.1:{up}", issuer, f"http://127.0.0.1:{up}/api/v1/auth/jwks.json", args.workers)
    start_gateway(stack, env, work / "gateway-trivial.log")
    wait_http(f"http://127.0.0.1:{up}/")
    wait_http(f"http://127.0.0.1:{nginx_port}/")
    path = "/api/v1/bench"
    check_auth_is_on(f"http://127.0.0.1:{gw_port}{path}", token)
    return run_three(
        {"direct": f"http://127.0.0.1:{up}{path}", "nginx": f"http://127.0.0.1:{nginx_port}{path}",
         "lmsd-gateway": f"http://127.0.0.1:{gw_port}{path}"},
        script, token, args,
    )


def scenario_api(stack: ExitStack, work: Path, script: Path, args: argparse.Namespace) -> dict[str, Result]:
    campus = new_campus(work / "campus")
    result = campus.install()
    if result.returncode != 0:
        raise SystemExit(f"install failed:\n{result.stdout}\n{result.stderr}")
    stack.callback(lambda: campus.lmsd("down", timeout=120))
    login = httpx.post(campus.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD})
    login.raise_for_status()
    token = login.json()["access_token"]
    worker = f"127.0.0.1:{campus.ports['api']}"  # worker 0: the one upstream all three reach
    base = free_port_block(2)
    nginx_port, gw_port = base, base + 1
    start_nginx(stack, work, "proxy-api", nginx_proxy_block(nginx_port, worker), str(args.workers))
    issuer = campus.url  # the portal URL without a trailing slash
    env = gateway_env(gw_port, f"http://{worker}", issuer, f"http://{worker}/api/v1/auth/jwks.json", args.workers)
    start_gateway(stack, env, work / "gateway-api.log")
    wait_http(f"http://127.0.0.1:{nginx_port}/healthz")
    path = "/api/v1/me"
    check_auth_is_on(f"http://127.0.0.1:{gw_port}{path}", token)
    return run_three(
        {"direct": f"http://{worker}{path}", "nginx": f"http://127.0.0.1:{nginx_port}{path}",
         "lmsd-gateway": f"http://127.0.0.1:{gw_port}{path}"},
        script, token, args,
    )


def run_three(urls: dict[str, str], script: Path, token: str, args: argparse.Namespace) -> dict[str, Result]:
    runs: dict[str, list[Result]] = {name: [] for name in urls}
    for name, url in urls.items():
        print(f"  {name:13} {url}", flush=True)
    for round_ in range(args.rounds):
        for name, url in urls.items():
            r = measure(url, script, token, args)
            runs[name].append(r)
            print(f"  round {round_ + 1}: {name:13} {r.rps:9,.0f} req/s  p50 {r.p50_ms:.3f} ms  p99 {r.p99_ms:.3f} ms"
                  f"  (load {load()})", flush=True)
    return {
        name: Result(
            rps=statistics.median(r.rps for r in rs),
            p50_ms=statistics.median(r.p50_ms for r in rs),
            p99_ms=statistics.median(r.p99_ms for r in rs),
            non2xx=sum(r.non2xx for r in rs),
        )
        for name, rs in runs.items()
    }


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(title: str, results: dict[str, Result], args: argparse.Namespace) -> str:
    a, b, c = results["direct"], results["nginx"], results["lmsd-gateway"]
    lines = [
        f"### {title}",
        "",
        f"Paced run: {args.rate_connections} connections, {args.delay_ms} ms apart"
        f" (≤ {args.rate_connections * 1000 / args.delay_ms:,.0f} req/s)."
        f" Medians of {args.rounds} interleaved round(s); {args.workers} nginx workers / gateway threads.",
        "",
        f"| target | req/s ({args.connections} conns) | p50 ms (paced) | p99 ms (paced) | errors/non-2xx |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in (("(a) direct", a), ("(b) nginx", b), ("(c) lmsd-gateway", c)):
        lines.append(f"| {name} | {r.rps:,.0f} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.non2xx} |")
    lines += [
        "",
        f"- req/s (c)/(b): **{c.rps / b.rps:.2f}×**; (c)/(a): {c.rps / a.rps:.2f}×; (b)/(a): {b.rps / a.rps:.2f}×",
        f"- p99 added over direct: (c) **{c.p99_ms - a.p99_ms:+.3f} ms**, (b) {b.p99_ms - a.p99_ms:+.3f} ms;"
        f" p50 added: (c) {c.p50_ms - a.p50_ms:+.3f} ms, (b) {b.p50_ms - a.p50_ms:+.3f} ms",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="connections of the saturating run")
    parser.add_argument("--rate-connections", type=int, default=8, help="connections of the paced run")
    parser.add_argument("--delay-ms", type=int, default=4, help="pause between a paced connection's requests")
    parser.add_argument("--api-delay-ms", type=int, default=25,
                        help="the same for the real API, which saturates far earlier (one Python worker)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario (medians are reported)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="nginx proxy workers = lmsd-gateway serving threads")
    parser.add_argument("--no-api", action="store_true", help="skip the real-API scenario (no campus install)")
    args = parser.parse_args()
    ensure_tools()
    paced_rate = args.rate_connections * 1000 / args.delay_ms
    print(f"{os.cpu_count()} CPUs; {args.duration}s per run; paced run ≈ {paced_rate:,.0f} req/s at most;"
          f" load average {load()}", flush=True)
    out = []
    with tempfile.TemporaryDirectory(prefix="lmsd-gwbench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        os.chmod(work, 0o755)  # nginx workers read jwks.json from here
        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        print("trivial upstream (nginx return 200):", flush=True)
        out.append(report("Trivial upstream (`return 200`)", scenario_trivial(stack, work, script, args), args))
        if not args.no_api:
            print("real API (GET /api/v1/me on one worker):", flush=True)
            api_args = argparse.Namespace(**{**vars(args), "delay_ms": args.api_delay_ms})
            title = "Real API (`GET /api/v1/me`, one Python worker)"
            out.append(report(title, scenario_api(stack, work, script, api_args), api_args))
    print()
    print(f"load average at the end: {load()}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
