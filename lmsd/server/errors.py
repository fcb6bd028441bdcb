"""One place maps errors to RFC 9457 problem+json. 5xx bodies say nothing internal."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from lmsd.errors import LmsdError

log = logging.getLogger("lmsd.api")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: object) -> Response[dict[str, object]]:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM)


def domain_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    assert isinstance(exc, LmsdError)
    if exc.status_code >= 500:
        log.error("operation failed: %s", exc)
        return problem(exc.status_code, exc.title, "the server could not complete the request")
    return problem(exc.status_code, exc.title, str(exc))


def validation_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    assert isinstance(exc, ValidationException)
    errors = exc.extra if isinstance(exc.extra, list) else []
    return problem(400, "Invalid request", str(exc.detail), errors=errors)


def http_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    assert isinstance(exc, HTTPException)
    if exc.status_code >= 500:
        log.error("HTTP %s: %s", exc.status_code, exc.detail)
        return problem(exc.status_code, "Server error", "the server could not complete the request")
    response = problem(exc.status_code, exc.detail if exc.status_code != 404 else "Not found", str(exc.detail))
    # 405 names the methods the resource has (`Allow`, RFC 9110 15.5.6): the router puts them on the exception.
    response.headers.update(exc.headers or {})
    return response


def unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Server error", "the server could not complete the request")


HANDLERS = {
    LmsdError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected,
}

__all__ = ["HANDLERS", "MediaType", "problem"]
