"""JSON bodies are converted strictly (lmsd.server.strict): what the document refuses is refused."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest
from litestar import Litestar, post
from litestar.testing import TestClient

from lmsd.server.errors import HANDLERS
from lmsd.server.strict import StrictRequest


class Shape(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    flag: bool = False
    at: datetime | None = None
    sizes: list[int] = []


@post("/shape")
async def take(data: Shape) -> dict[str, object]:
    return {"name": data.name, "flag": data.flag, "at": data.at.isoformat() if data.at else None}


@pytest.fixture(scope="module")
def client() -> TestClient[Litestar]:
    app = Litestar([take], request_class=StrictRequest, exception_handlers=HANDLERS)  # type: ignore[arg-type]
    return TestClient(app)


def test_a_valid_body_is_taken_as_it_is(client: TestClient[Litestar]) -> None:
    r = client.post("/shape", json={"name": "a", "flag": True, "at": "2026-01-02T03:04:05Z", "sizes": [1]})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "a", "flag": True, "at": "2026-01-02T03:04:05+00:00"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "flag": 0}, "flag"),  # lax msgspec: 0 -> False
        ({"name": "a", "at": 0}, "at"),  # lax msgspec: seconds -> date-time
        ({"name": 1}, "name"),
        ({"name": "a", "sizes": ["1"]}, "sizes[0]"),  # lax msgspec: "1" -> 1
    ],
)
def test_what_lax_rules_would_coerce_is_refused(client: TestClient[Litestar], body: dict[str, object], field: str) -> None:
    r = client.post("/shape", json=body)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["code"] == "request.invalid" and problem["field"] == field


def test_a_number_without_a_fraction_is_an_integer(client: TestClient[Litestar]) -> None:
    assert client.post("/shape", json={"name": "a", "sizes": [2.0, 3]}).status_code == 201
    assert client.post("/shape", json={"name": "a", "sizes": [2.5]}).status_code == 400


def test_unknown_fields_and_bad_json_stay_refused(client: TestClient[Litestar]) -> None:
    assert client.post("/shape", json={"name": "a", "extra": 1}).status_code == 400
    r = client.post("/shape", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


class _DriverError(Exception):
    sqlstate = "22021"


def test_text_with_nul_is_refused_as_invalid_input_not_a_server_error() -> None:
    """PostgreSQL refuses NUL in text (22021) wherever it came from: a 422, not a 500."""
    from lmsd.server.errors import unexpected

    wrapped = RuntimeError("statement failed")
    wrapped.__cause__ = _DriverError("invalid byte sequence for encoding UTF8: 0x00")
    response = unexpected(None, wrapped)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert isinstance(response.content, dict) and response.content["code"] == "text.nul"
    assert unexpected(None, RuntimeError("other")).status_code == 500  # type: ignore[arg-type]
