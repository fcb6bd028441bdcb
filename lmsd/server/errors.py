"""One place maps errors to RFC 9457 problem+json. 5xx bodies say nothing internal.

:data:`STATUS` is the one table from a domain error class to its HTTP status and title; an error
takes the entry of the nearest class in its MRO, so a subclass nobody listed answers as its base
does (an unknown direct subclass of :class:`~lmsd.errors.LmsdError` is a 500 and is logged). The
core imports no capability: the composition root adds the capabilities' own classes with
:func:`register`. Every body carries ``code`` (the error's stable code) and, when the error is
about one input, ``field``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from lmsd.db.availability import lost_node
from lmsd.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LmsdError,
    NotFound,
    OperationFailed,
    PreconditionFailed,
    PreconditionRequired,
    TooManyRequests,
    Unauthorized,
)

log = logging.getLogger("lmsd.api")
PROBLEM = "application/problem+json"

STATUS: dict[type[LmsdError], tuple[int, str]] = {
    LmsdError: (500, "Internal error"),
    OperationFailed: (500, "Internal error"),
    Invalid: (422, "Invalid input"),
    NotFound: (404, "Not found"),
    Conflict: (409, "Conflict"),
    Forbidden: (403, "Forbidden"),
    Unauthorized: (401, "Unauthorized"),
    PreconditionFailed: (412, "Precondition failed"),
    PreconditionRequired: (428, "Precondition required"),
    TooManyRequests: (429, "Too many requests"),
}


def register(statuses: Mapping[type[LmsdError], tuple[int, str]]) -> None:
    """Add capabilities' own error classes to the table (called by the composition root)."""
    STATUS.update(statuses)


def status_of(error: LmsdError | type[LmsdError]) -> tuple[int, str]:
    """The status and title of a domain error (or error class): its nearest class in the table."""
    cls = error if isinstance(error, type) else type(error)
    for base in cls.__mro__:
        if issubclass(base, LmsdError) and base in STATUS:
            return STATUS[base]
    return STATUS[LmsdError]


def _code_of(status: int) -> str:
    """A code for an answer no domain error chose: the status's phrase ("not_found")."""
    try:
        return re.sub(r"\W+", "_", HTTPStatus(status).phrase.lower())
    except ValueError:
        return "error"


def problem(
    status: int, title: str, detail: str, *, code: str | None = None, field: str | None = None, **extra: object
) -> Response[dict[str, object]]:
    body: dict[str, object] = {
        "type": "about:blank", "title": title, "status": status, "detail": detail, "code": code or _code_of(status)
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM)


def domain_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    assert isinstance(exc, LmsdError)
    status, title = status_of(exc)
    if status >= 500:
        log.error("operation failed: %s", exc)
        return problem(status, title, "the server could not complete the request", code=exc.code)
    return problem(status, title, str(exc), code=exc.code, field=exc.field)


def validation_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    """The request does not match its declared shape (msgspec): 400, ``field`` when one key is wrong."""
    assert isinstance(exc, ValidationException)
    errors = exc.extra if isinstance(exc.extra, list) else []
    keys = {e.get("key") for e in errors if isinstance(e, dict) and e.get("key")}
    field = str(keys.pop()) if len(keys) == 1 else None
    return problem(400, "Invalid request", str(exc.detail), code="request.invalid", field=field, errors=errors)


def http_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    assert isinstance(exc, HTTPException)
    if exc.status_code >= 500:
        log.error("HTTP %s: %s", exc.status_code, exc.detail)
        return problem(exc.status_code, "Server error", "the server could not complete the request")
    response = problem(exc.status_code, exc.detail if exc.status_code != 404 else "Not found", str(exc.detail))
    # 405 names the methods the resource has (`Allow`, RFC 9110 15.5.6): the router puts them on the exception.
    response.headers.update(exc.headers or {})
    return response


# PostgreSQL's text holds no NUL character (SQLSTATE 22021, character_not_in_repertoire): input
# that carries one is refused as invalid, whichever field or parameter brought it.
TEXT_REFUSED = "22021"


def _sqlstate(exc: BaseException | None) -> str | None:
    seen = 0
    while exc is not None and seen < 5:
        if (state := getattr(exc, "sqlstate", None)) is not None:
            return str(state)
        exc, seen = getattr(exc, "orig", None) or exc.__cause__, seen + 1
    return None


# The database cannot reach a node it needs: SQLSTATE class 08 (Citus's "connection to the remote
# node ... failed" from the coordinator), a node shutting down or starting (57P01-57P03), or Citus
# losing a worker in the middle of a command (XX000 with libpq's message). The same request can
# succeed once the node is back (the supervisor restarts it), so 503 with Retry-After, not a 500.
UNAVAILABLE_STATES = ("57P01", "57P02", "57P03")
RETRY_AFTER_S = 5


def database_unavailable(exc: BaseException) -> bool:
    state = _sqlstate(exc)
    if state is None:
        return False
    return state.startswith("08") or state in UNAVAILABLE_STATES or lost_node(state, str(exc))


def unavailable() -> Response[dict[str, object]]:
    response = problem(
        503, "Service unavailable", "the database is unavailable for now; try again shortly", code="database.unavailable"
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    if _sqlstate(exc) == TEXT_REFUSED:
        return problem(422, "Invalid input", "text may not contain the NUL character", code="text.nul")
    if database_unavailable(exc):
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return unavailable()
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Server error", "the server could not complete the request")


HANDLERS = {
    LmsdError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected,
}

__all__ = ["HANDLERS", "STATUS", "MediaType", "problem", "register", "status_of"]
