"""Portal benchmark: first contentful paint of the main pages and the JavaScript the lesson
page ships, in Debian's Chromium, against the same pages served as static files by Debian's nginx.

Run: .venv/bin/python bench/portal.py [--scale 0.01] [--rounds 5] [--work DIR]

A campus is installed (embedded profile, through lmsd-gateway) and seeded with `lmsd dev seed
--scale S` (the standard data set: at 1.0, 200k users, 20k courses, 2M enrolments) plus one
course made as a teacher would: a text lesson with code and maths, a video lesson (a real clip,
transcoded), a quiz, and an enrolled learner. Then, for each main page, as the learner (or the
campus admin for /teach and /admin):

  (a) lmsd   — the page through the gateway and the API, rendered from the database per request;
  (b) nginx  — the same bytes saved as files: every same-origin response the page loaded in (a)
               (HTML, CSS, JS, manifest, icons, playlists, segments) mirrored into a directory
               that Debian's nginx serves with the same MIME types (gzip on). This is the floor: what the
               browser needs to paint the page when the server answers instantly.

Each page is loaded --rounds times per target, alternating (a b b a …), each time in a fresh
browser context (cold cache, like a first visit) and then once more in the same context (warm:
the static files cached, the HTML asked again). FCP is Chromium's `first-contentful-paint`
paint timing. Printed: median FCP per page and target, the ratio (a)/(b), and the budget check
(< 1000 ms). Then the lesson page's JavaScript: every script the video lesson page loads (hls.js, our
minified scripts), as the portal sends them — the Brotli and gzip copies `npm run build` made —
counted in bytes on the wire for a gzip-only and a Brotli client, against the 200 kB budget.
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import ensure_tools, start_nginx, wait_http  # noqa: E402
from tests.api import PASSWORD  # noqa: E402
from tests.browser import launch, sign_in  # noqa: E402
from tests.learning import client, setup  # noqa: E402
from tests.media import wait_video  # noqa: E402
from tests.support import ADMIN_PASSWORD, Campus, free_port_block, new_campus  # noqa: E402

FCP_BUDGET_MS = 1000.0
JS_BUDGET_BYTES = 200 * 1000
LESSON_BODY = """# Vectors

A vector $v = (v_1, v_2)$ has a length $\\|v\\| = \\sqrt{v_1^2 + v_2^2}$.

$$A x = b$$

```python
def norm(v):
    return sum(x * x for x in v) ** 0.5
```
"""
# the baseline compresses like the portal does (nginx's gzip on the fly, level 6)
NGINX_GZIP = ("gzip on; gzip_comp_level 6; gzip_types text/css text/javascript application/javascript"
              " application/json application/manifest+json image/svg+xml text/vtt;")
MIME_EXTRA = """
types {
  application/vnd.apple.mpegurl m3u8;
  video/iso.segment m4s;
  video/mp4 mp4;
  text/vtt vtt;
  application/manifest+json webmanifest;
  text/javascript js mjs;
}
"""


@dataclass
class Target:
    name: str
    base: str
    cookies: list[dict[str, Any]] = field(default_factory=list)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def prepare(work: Path, scale: float) -> tuple[Campus, dict[str, Any]]:
    campus = new_campus(work / "campus")
    result = campus.install()
    if result.returncode:
        raise SystemExit(result.stdout + result.stderr)
    started = time.perf_counter()
    seeded = campus.lmsd("dev", "seed", "--scale", str(scale), timeout=7200)
    if seeded.returncode:
        raise SystemExit(seeded.stdout + seeded.stderr)
    print(f"seeded scale {scale} in {time.perf_counter() - started:.0f}s", flush=True)

    async def course() -> dict[str, Any]:
        async with client(campus) as c:
            s = await setup(c, learners=1)
            current = await c.get(f"/api/v1/lessons/{s.lessons['text']}", headers=s.teacher.h)
            r = await c.patch(f"/api/v1/lessons/{s.lessons['text']}",
                              headers={**s.teacher.h, "if-match": current.headers.get("etag", "*")},
                              json={"body": LESSON_BODY})
            r.raise_for_status()
            lessons = (await c.get(f"/api/v1/lessons/{s.lessons['video']}", headers=s.teacher.h)).json()
            await wait_video(c, s.teacher.h, lessons["video_id"], lambda v: v["status"] == "ready", 600)
            return {"course": s.course["id"], "lessons": s.lessons, "learner": s.learners[0].email}

    return campus, asyncio.run(course())


def fcp(page: Page, url: str) -> float:
    response = page.goto(url, wait_until="load")
    if response is None or response.status >= 400:
        raise SystemExit(f"{url}: HTTP {response.status if response else 'no response'}")
    value = page.evaluate(
        """() => new Promise(resolve => {
            const found = () => performance.getEntriesByName("first-contentful-paint")[0];
            if (found()) return resolve(found().startTime);
            new PerformanceObserver(() => found() && resolve(found().startTime)).observe({type: "paint", buffered: true});
        })"""
    )
    return float(value)


def measure(browser: Browser, target: Target, path: str) -> tuple[float, float]:
    """(cold, warm) FCP in ms of ``path`` on ``target``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    try:
        if target.cookies:
            context.add_cookies(target.cookies)
        page = context.new_page()
        cold = fcp(page, target.base + path)
        warm = fcp(page, target.base + path)
        return cold, warm
    finally:
        context.close()


def mirror(browser: Browser, lmsd: Target, paths: list[str], root: Path) -> dict[str, list[tuple[str, str]]]:
    """Save every same-origin response the pages load in lmsd as files under ``root``; returns
    the scripts each page loaded (url, path) for the size check."""
    scripts: dict[str, list[tuple[str, str]]] = {}
    origin = lmsd.base
    context = browser.new_context(service_workers="block")
    context.add_cookies(lmsd.cookies)
    cookie_header = "; ".join(f"{c['name']}={c['value']}" for c in lmsd.cookies)
    with httpx.Client(base_url=origin, headers={"cookie": cookie_header}, timeout=30) as http:
        for path in paths:
            page = context.new_page()
            seen: list[tuple[str, str]] = []
            page.on("request", lambda r, seen=seen: seen.append((r.url, r.resource_type)))
            page.goto(origin + path, wait_until="networkidle")
            page.wait_for_timeout(1500)  # the player fetches its first segments after load
            page.close()
            scripts[path] = [(u, urlsplit(u).path) for u, kind in seen if kind == "script" and u.startswith(origin)]
            for url, kind in seen:
                if not url.startswith(origin):
                    continue
                parts = urlsplit(url)
                target = root / parts.path.lstrip("/")
                if kind == "document":  # /teach and /teach/courses/x are both pages
                    target = target / "index.html"
                if target.exists():
                    continue
                body = http.get(url[len(origin):]).content
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
    context.close()
    return scripts


def wire_size(http: httpx.Client, url: str, encoding: str) -> tuple[int, str]:
    """Bytes on the wire for ``url`` asked with ``Accept-Encoding: encoding``, and the coding used."""
    with http.stream("GET", url, headers={"accept-encoding": encoding}) as r:
        r.raise_for_status()
        return sum(len(chunk) for chunk in r.iter_raw()), r.headers.get("content-encoding", "identity")


def js_bytes(scripts: list[tuple[str, str]], cookies: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    """(path, raw, gzip, brotli) bytes of each script as the portal sends it (precompressed)."""
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    out = []
    with httpx.Client(headers={"cookie": header}, timeout=30) as http:
        for url, path in dict(scripts).items():
            raw, _ = wire_size(http, url, "identity")
            gz, gz_coding = wire_size(http, url, "gzip")
            br, br_coding = wire_size(http, url, "br")
            if (gz_coding, br_coding) != ("gzip", "br"):
                raise SystemExit(f"{path} is not sent compressed ({gz_coding}, {br_coding}): run npm run build")
            out.append((path, raw, gz, br))
    return out


def session_cookies(browser: Browser, base: str, email: str, password: str) -> list[dict[str, Any]]:
    context = browser.new_context(service_workers="block")
    page = context.new_page()
    sign_in(page, base, email, password)
    cookies = [c for c in context.cookies() if c["name"] == "lmsd_session"]
    context.close()
    return cookies  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    ensure_tools()
    work = args.work or Path(tempfile.mkdtemp(prefix="lmsd-bench-portal-"))
    print(f"load average before: {load_average()}", flush=True)
    campus, made = prepare(work, args.scale)
    lessons = made["lessons"]
    learner_pages = ["/catalog", f"/courses/{made['course']}", f"/lessons/{lessons['text']}",
                     f"/lessons/{lessons['video']}", f"/lessons/{lessons['quiz']}", "/my", "/profile"]
    admin_pages = ["/teach", f"/teach/courses/{made['course']}", "/admin", "/admin/users"]
    try:
        with sync_playwright() as playwright, ExitStack() as stack:
            browser = launch(playwright)
            stack.callback(browser.close)
            base = campus.url
            learner = session_cookies(browser, base, made["learner"], PASSWORD)
            admin = session_cookies(browser, base, "admin@test.example", ADMIN_PASSWORD)
            port = free_port_block(1)
            static_root = work / "static-copy"
            groups = [("anonymous", [], ["/login"]), ("learner", learner, learner_pages), ("admin", admin, admin_pages)]
            scripts: dict[str, list[tuple[str, str]]] = {}
            for name, cookies, paths in groups:
                root = static_root / name
                scripts.update(mirror(browser, Target("lmsd", base, cookies), paths, root))
            blocks = "\n".join(
                f"server {{ listen 127.0.0.1:{port + i}; root {static_root / name}; default_type text/html;"
                f" include /etc/nginx/mime.types; {MIME_EXTRA} {NGINX_GZIP} location / {{ try_files $uri $uri/index.html =404; }} }}"
                for i, (name, _, _) in enumerate(groups)
            )
            start_nginx(stack, work, "nginx", blocks, "1")
            for i in range(len(groups)):
                wait_http(f"http://127.0.0.1:{port + i}/")
            results: dict[str, dict[str, list[float]]] = {}
            for i, (_name, cookies, paths) in enumerate(groups):
                lmsd = Target("lmsd", base, [dict(c) for c in cookies])
                static = Target("nginx", f"http://127.0.0.1:{port + i}",
                                [{**c, "domain": "127.0.0.1"} for c in cookies])
                for path in paths:
                    row = results.setdefault(path, {"lmsd cold": [], "lmsd warm": [], "nginx cold": [], "nginx warm": []})
                    for r in range(args.rounds):
                        order = (lmsd, static) if r % 2 == 0 else (static, lmsd)
                        for t in order:
                            cold, warm = measure(browser, t, path)
                            row[f"{t.name} cold"].append(cold)
                            row[f"{t.name} warm"].append(warm)
            print(f"\nFirst contentful paint, ms (medians of {args.rounds}; fresh context = cold, reload = warm)")
            print(f"{'page':<48} {'lmsd cold':>10} {'nginx cold':>10} {'ratio':>6} {'lmsd warm':>10} {'nginx warm':>10} {'ratio':>6}  budget")
            summary: dict[str, Any] = {}
            for path, row in results.items():
                med = {k: statistics.median(v) for k, v in row.items()}
                label = path if len(path) < 48 else path[:20] + "…" + path[-26:]
                ok = "ok" if med["lmsd cold"] < FCP_BUDGET_MS else "OVER"
                print(f"{label:<48} {med['lmsd cold']:>10.0f} {med['nginx cold']:>10.0f} {med['lmsd cold'] / med['nginx cold']:>6.2f}"
                      f" {med['lmsd warm']:>10.0f} {med['nginx warm']:>10.0f} {med['lmsd warm'] / med['nginx warm']:>6.2f}  {ok}")
                summary[path] = med
            video_page = f"/lessons/{lessons['video']}"
            sizes = js_bytes(scripts[video_page], learner)
            print(f"\nJavaScript of the video lesson page as sent (precompressed), budget {JS_BUDGET_BYTES / 1000:.0f} kB:")
            print(f"  {'script':<44} {'raw kB':>8} {'gzip kB':>8} {'br kB':>8}")
            for path, raw, gz, br in sizes:
                print(f"  {path:<44} {raw / 1000:>8.1f} {gz / 1000:>8.1f} {br / 1000:>8.1f}")
            totals = [sum(row[i] for row in sizes) for i in (1, 2, 3)]
            print(f"  {'total':<44} {totals[0] / 1000:>8.1f} {totals[1] / 1000:>8.1f} {totals[2] / 1000:>8.1f}")
            for name, total in (("gzip", totals[1]), ("brotli", totals[2])):
                verdict = "ok" if total < JS_BUDGET_BYTES else "OVER"
                print(f"  {name}: {total / JS_BUDGET_BYTES:.2f} of the budget ({verdict})")
            print(f"\nload average after: {load_average()}")
            (work / "portal-bench.json").write_text(json.dumps({"fcp": summary, "js": sizes}, indent=1))
    finally:
        campus.lmsd("down", timeout=120)
        if os.environ.get("LMSD_BENCH_KEEP") is None and args.work is None:
            subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
