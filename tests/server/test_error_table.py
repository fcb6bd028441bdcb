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


def _driver_error(cls: type[Exception], message: str) -> Exception:
    """The asyncpg error wrapped as SQLAlchemy raises it to a handler."""
    from sqlalchemy.exc import DBAPIError

    return DBAPIError("INSERT INTO outbox ...", {}, cls(message))


def test_a_database_node_out_of_reach_is_503_with_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    """Citus cannot reach a worker (SQLSTATE 08006), loses one mid-command (XX000 with libpq's
    message) or a node is shutting down or starting (57P01, 57P03): the request may succeed once
    the node is back, so 503 + Retry-After, and nothing of the message in the body."""
    import asyncpg

    from lmsd.server.errors import unexpected

    for error in (
        _driver_error(asyncpg.exceptions.ConnectionFailureError,
                      "connection to the remote node lmsd@127.0.0.1:25027 failed with the following error: Connection refused"),
        _driver_error(asyncpg.exceptions.InternalServerError,
                      "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally"),
        _driver_error(asyncpg.exceptions.AdminShutdownError, "terminating connection due to administrator command"),
        _driver_error(asyncpg.exceptions.CannotConnectNowError, "the database system is starting up"),
    ):
        with caplog.at_level(logging.WARNING, logger="lmsd.api"):
            response = unexpected(None, error)  # type: ignore[arg-type]
        body = json.loads(response.render(response.content, "application/json"))
        assert response.status_code == 503 and response.media_type == "application/problem+json", error
        assert int(response.headers["Retry-After"]) > 0 and body["code"] == "database.unavailable"
        assert "127.0.0.1" not in json.dumps(body) and "server closed" not in json.dumps(body)
    assert "remote node lmsd@127.0.0.1:25027" in caplog.text  # the cause goes to the log, one line


def test_other_database_errors_stay_500() -> None:
    import asyncpg

    from lmsd.server.errors import unexpected

    for error in (
        _driver_error(asyncpg.exceptions.InternalServerError, "could not find shard placement"),
        _driver_error(asyncpg.exceptions.UndefinedColumnError, 'column "x" does not exist'),
    ):
        assert unexpected(None, error).status_code == 500  # type: ignore[arg-type]
