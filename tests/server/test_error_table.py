"""The edge's one table from domain error class to HTTP status and title."""

from __future__ import annotations

import json
import logging

import pytest

import lmsd.app  # noqa: F401 - imports every capability, so every error class is defined
from lmsd.app.errors import CAPABILITY_STATUS
from lmsd.errors import Conflict, Invalid, LmsdError, NotFound, OperationFailed
from lmsd.server.errors import STATUS, domain_error, register, status_of


def _all_subclasses(cls: type[LmsdError]) -> set[type[LmsdError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


ERRORS = sorted(_all_subclasses(LmsdError), key=lambda c: f"{c.__module__}.{c.__qualname__}")


@pytest.fixture(autouse=True)
def capabilities() -> None:
    register(CAPABILITY_STATUS)  # what create_app does


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_domain_error_maps_to_a_deliberate_status(cls: type[LmsdError]) -> None:
    status, title = status_of(cls)
    assert 400 <= status < 600 and title
    if status >= 500:  # only a failed operation is the server's fault; the rest are the client's
        assert issubclass(cls, OperationFailed), f"{cls.__qualname__} would answer {status}: add it to the table"


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_domain_errors_carry_no_http(cls: type[LmsdError]) -> None:
    assert not hasattr(cls, "status_code") and not hasattr(cls, "title"), f"{cls.__qualname__}: move it to the table"


def test_the_nearest_class_in_the_mro_wins() -> None:
    class TakenCode(Conflict):
        pass

    class Nobody(LmsdError):
        pass

    assert status_of(TakenCode("x")) == STATUS[Conflict] == (409, "Conflict")
    assert status_of(Invalid) == (422, "Invalid input") and status_of(NotFound("x"))[0] == 404
    assert status_of(Nobody("x")) == (500, "Internal error")  # unknown: the server's fault, logged


def test_codes_default_by_class_and_fields_are_optional() -> None:
    assert Invalid("bad").code == "invalid" and Invalid("bad").field is None
    assert NotFound("x").code == "not_found" and Conflict("x").code == "conflict"
    e = Conflict("taken", field="code", code="course.code_taken")
    assert (e.code, e.field, str(e)) == ("course.code_taken", "code", "taken")


def test_an_unknown_error_answers_500_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    class Surprise(LmsdError):
        pass

    with caplog.at_level(logging.ERROR, logger="lmsd.api"):
        response = domain_error(None, Surprise("secret path /srv/x"))  # type: ignore[arg-type]
    body = json.loads(response.render(response.content, "application/json"))
    assert response.status_code == 500 and "secret" not in json.dumps(body) and body["code"] == "error"
    assert "secret path" in caplog.text  # the detail goes to the log


def test_a_client_error_body_has_code_and_field() -> None:
    response = domain_error(None, Invalid("too short", field="password", code="user.password_too_short"))  # type: ignore[arg-type]
    body = json.loads(response.render(response.content, "application/json"))
    assert response.status_code == 422 and response.media_type == "application/problem+json"
    assert body == {"type": "about:blank", "title": "Invalid input", "status": 422, "detail": "too short",
                    "code": "user.password_too_short", "field": "password"}
