"""Property-based API testing from the served OpenAPI document, through the real gateway.

Schemathesis generates valid and invalid requests for every operation; none may produce a 5xx,
and every documented response must match its schema and content type.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.support import ADMIN_PASSWORD, Campus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(shared_campus: Campus):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_url(shared_campus.url + "/api/v1/schema/openapi.json")


@pytest.fixture(scope="module")
def admin_headers(shared_campus: Campus) -> dict[str, str]:
    r = httpx.post(shared_campus.url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    return {"authorization": f"Bearer {r.json()['access_token']}"}


PUBLIC = ("/api/v1/auth/login", "/api/v1/auth/password-reset/confirm", "/api/v1/auth/refresh", "/api/v1/auth/logout")


def test_api_never_fails_and_matches_its_schema(api_schema, admin_headers: dict[str, str], shared_campus: Campus) -> None:  # type: ignore[no-untyped-def]
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            if case.path not in PUBLIC:
                case.headers = {**(case.headers or {}), **admin_headers}
            case.call_and_validate(
                base_url=shared_campus.url,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc).strip()[:600]}")
    assert not failures, "\n\n".join(failures)
