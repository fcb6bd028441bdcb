"""The API keeps its published contract: schemathesis, as an outside integrator runs it.

Every check and every phase (examples, coverage, fuzzing, stateful through the document's links)
against the OpenAPI document the campus serves, through the real gateway, once per role, each
role with an account of its own. It must find nothing: not only no server error, no failure of
any kind. A request valid by the document is accepted, an invalid one is refused with a
documented problem, and every answer matches what the document says about it.

The runs go learner, instructor, admin: an admin run creates, changes and resets what it likes
(including its own password), which would lock the others out if it went first.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_campus
from tests.support import ADMIN_PASSWORD, Campus

pytestmark = pytest.mark.slow

ROLES = ("learner", "instructor", "admin")
ROOT = Path(__file__).resolve().parents[2]
HOOKS = "tests.server.schemathesis_hooks"  # serializers for media types schemathesis does not know
SEED = 14
# Per operation and phase: 56 operations x 3 roles must stay within a few minutes on 2 cores
# (under a minute a role at 5). One worker: the run is deterministic, and schemathesis's threads
# can trip over Python's ast module (hypothesis describing a lambda: a runtime error, not a finding).
MAX_EXAMPLES = 5
WORKERS = 1
STATEFUL_STEPS = 20
# The statuses a *valid* request may still get, besides schemathesis's defaults (2xx, 3xx, 401,
# 403, 404, 409, 429): 412 when If-Match names a version that is no longer current (a generated
# ETag rarely matches), 413 when a well-formed size is beyond what the campus takes (an upload's
# Upload-Length) and 422 when the content is well formed but not acceptable (an upload that is
# not a video, a transcript that does not parse, a quiz answer out of range, text with NUL).
CONFIG = f"""
[generation]
deterministic = true
database = "none"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "413", "422", "429"]

# An invalid request may also be refused as too large (413, or 431 by the gateway for a request
# head beyond its limit) or, for tus, with 412 (its version header).
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429", "431"]

# ... and any request may meet the gateway's rate limit (429) first.
[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "412", "428", "429"]

[phases.stateful]
max-steps = {STATEFUL_STEPS}
"""


@dataclass(frozen=True)
class Outcome:
    role: str
    code: int
    operations: int
    cases: int
    failures: int
    seconds: float
    output: str


def login(campus: Campus, email: str, password: str) -> str:
    r = httpx.post(campus.url + "/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def shared_campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """The campus under test, with a sign-in budget its thousands of generated sign-in and reset
    cases do not exhaust: the budget itself is the gateway suite's to test (tests/gateway); here
    each 429 only made the run wait out its Retry-After (about a minute of 5)."""
    yield from running_campus(tmp_path_factory, env={"LMSD_GATEWAY__RATE_LOGIN": "100/s:1000"})


@pytest.fixture(scope="module")
def accounts(shared_campus: Campus) -> dict[str, tuple[str, str]]:
    """role -> (e-mail, password): the installed admin, and an instructor and a learner made through the API."""
    admin = login(shared_campus, "admin@test.example", ADMIN_PASSWORD)
    made = {"admin": ("admin@test.example", ADMIN_PASSWORD)}
    for role in ("instructor", "learner"):
        email, password = f"{role}-contract@test.example", secrets.token_urlsafe(16)
        r = httpx.post(
            shared_campus.url + "/api/v1/users",
            json={"email": email, "display_name": f"Contract {role}", "role": role, "password": password},
            headers={"authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        made[role] = (email, password)
    return made


def run_schemathesis(campus: Campus, role: str, token: str, workdir: Path) -> Outcome:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    report = workdir / f"report-{role}.json"
    st = Path(sys.executable).with_name("st")
    started = time.monotonic()
    result = subprocess.run(
        [
            str(st), "--config-file", str(config), "--no-color", "run",
            campus.url + "/api/v1/schema/openapi.json",
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", str(SEED),
            "--workers", str(WORKERS),
            "--request-timeout", "30",
            "--rate-limit", "auto",  # as a client should: wait as long as the gateway's Retry-After says
            "--report", "json",
            "--report-json-path", str(report),
        ],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
        env={**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.monotonic() - started
    return Outcome(role, result.returncode, *_figures(report), seconds, result.stdout + result.stderr)


def _figures(report: Path) -> tuple[int, int, int]:
    """Operations tested, test cases generated and failures found, from the run's JSON report."""
    if not report.exists():
        return 0, 0, 0
    doc = json.loads(report.read_text())
    failures = sum(group["count"] for group in doc["failures"]) + sum(error["count"] for error in doc["errors"])
    return doc["operations"]["tested"], doc["test_cases"]["generated"], failures


def test_every_role_finds_the_api_true_to_its_document(
    shared_campus: Campus, accounts: dict[str, tuple[str, str]], tmp_path: Path
) -> None:
    outcomes = []
    for role in ROLES:
        # Signed in just before its run: an earlier run may have reset passwords it could reach.
        token = login(shared_campus, *accounts[role])
        outcomes.append(run_schemathesis(shared_campus, role, token, tmp_path))
    summary = "\n".join(
        f"{o.role}: exit {o.code}, {o.operations} operations, {o.cases} cases, {o.failures} failures, {o.seconds:.0f} s"
        for o in outcomes
    )
    print(summary)
    failed = [o for o in outcomes if o.code != 0]
    assert not failed, summary + "\n\n" + "\n\n".join(f"--- {o.role} ---\n{o.output[-20000:]}" for o in failed)
    assert all(o.operations >= 50 and o.cases > 0 for o in outcomes), summary
