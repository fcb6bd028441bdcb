"""xAPI statements forwarded to an external LRS (a recording stub on loopback): every learning
event arrives once as a valid statement with the xAPI version header and Basic auth; an LRS
that is down or answers 5xx delays delivery and loses nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.learning import client, setup, wait_progress
from tests.support import Campus, free_port_block

pytestmark = pytest.mark.slow


class Lrs:
    def __init__(self) -> None:
        self.statements: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.failing = True  # answers 503 until told otherwise
        self.headers: list[dict[str, str]] = []
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                lrs.posts += 1
                lrs.headers.append({k.lower(): v for k, v in self.headers.items()})
                if lrs.failing or self.path != "/xapi/statements":
                    self.send_response(503 if lrs.failing else 404)
                    self.end_headers()
                    return
                for st in json.loads(body):
                    lrs.statements[st["id"]] = st
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args: Any) -> None:
                return

        self.port = free_port_block(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def test_statements_reach_the_lrs_once_despite_an_outage(campus: Campus) -> None:
    lrs = Lrs()
    creds = campus.data_dir / "lrs.key"
    creds.write_text("lmsd-key:lrs-secret\n")
    os.chmod(creds, 0o644)
    assert campus.lmsd("config", "set", "events.xapi_lrs_url", f"http://127.0.0.1:{lrs.port}/xapi").returncode == 0
    assert campus.lmsd("config", "set", "events.xapi_lrs_credentials_file", str(creds)).returncode == 0
    bad = campus.lmsd("config", "set", "events.xapi_lrs_url", "ftp://nope")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert campus.lmsd("down").returncode == 0
    # a credentials file others can read is refused in one line before anything starts
    up = campus.lmsd("up", timeout=120)
    assert up.returncode == 1 and "chmod 600" in up.stderr and len(up.stderr.strip().splitlines()) == 1, up.stderr
    assert "not running" in campus.lmsd("down").stdout  # nothing was started
    os.chmod(creds, 0o600)
    up = campus.lmsd("up", timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        async with client(campus) as c:
            s = await setup(c, learners=2)
            for who, enrolment in zip(s.learners, s.enrolments, strict=True):
                events = [{"enrolment_id": enrolment, "type": "lesson_started", "lesson_id": s.lessons["text"]} for _ in range(30)]
                r = await c.post("/api/v1/learning/events", headers=who.h, json={"events": events})
                assert r.status_code == 202, r.text
                await wait_progress(c, who, enrolment, lambda p: p["events_applied"] == 31)
            # the LRS is down: nothing arrives, nothing is dead-lettered, the projections carry on
            await asyncio.sleep(3)
            assert lrs.posts > 0 and not lrs.statements
            status = json.loads(campus.lmsd("events", "status", "--json").stdout)
            forward = next(x for x in status["consumers"] if x["name"] == "xapi-forward")
            assert forward["pending"] + forward["unacknowledged"] >= 62 and status["dead_letters"] == 0
            lrs.failing = False
            deadline = time.monotonic() + 60
            while len(lrs.statements) < 62 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            mine = {st["id"]: st for st in lrs.statements.values() if st["context"]["registration"] in s.enrolments}
            assert len(mine) == 62
            api = await c.get("/api/v1/xapi/statements", headers=s.admin.h, params={"limit": 500})
            served = {st["id"]: st for st in api.json()["statements"] if st["context"]["registration"] in s.enrolments}
            assert served == mine  # the LRS got exactly what the campus serves
            sent = [h for h in lrs.headers if h.get("x-experience-api-version")]
            assert sent and all(h["x-experience-api-version"] == "1.0.3" for h in sent)
            assert all(h["authorization"] == "Basic " + base64.b64encode(b"lmsd-key:lrs-secret").decode() for h in sent)
    finally:
        lrs.server.shutdown()
