"""The domain's error hierarchy.

Services raise these; the HTTP edge maps them to problem+json and the CLI prints them as one
red line with exit code 1. Nothing below the edge raises HTTP or Typer exceptions.
"""

from __future__ import annotations


class LmsdError(Exception):
    """Base of every error lmsd reports to a person. The message is meant to be read."""

    status_code = 500
    title = "Internal error"


class Invalid(LmsdError):
    status_code = 422
    title = "Invalid input"


class NotFound(LmsdError):
    status_code = 404
    title = "Not found"


class Conflict(LmsdError):
    status_code = 409
    title = "Conflict"


class Forbidden(LmsdError):
    status_code = 403
    title = "Forbidden"


class Unauthorized(LmsdError):
    status_code = 401
    title = "Unauthorized"


class OperationFailed(LmsdError):
    """An operator-facing step (start, backup, upgrade) could not complete."""


class PreconditionFailed(LmsdError):
    """The client's If-Match names a version that is no longer current."""

    status_code = 412
    title = "Precondition failed"


class PreconditionRequired(LmsdError):
    status_code = 428
    title = "Precondition required"


class TooManyRequests(LmsdError):
    status_code = 429
    title = "Too many requests"
