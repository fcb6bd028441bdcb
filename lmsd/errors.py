"""The domain's error hierarchy.

Services raise these; the HTTP edge maps a class to a status and a title in one table
(:mod:`lmsd.server.errors`), the portal shows a translated message chosen by ``code`` next to the
input ``field``, and the CLI prints the message as one red line with exit code 1. Nothing below
the edge raises HTTP or Typer exceptions, and no class here knows about HTTP.

``field`` names the input the error is about, by its API and form name ("code", "password").
``code`` is a stable dotted machine code a client may react to ("course.code_taken"); without one
the class's default applies ("invalid", "not_found", ...). The message is meant to be read by a
person and may change; ``code`` may not.
"""

from __future__ import annotations

from typing import ClassVar


class LmsdError(Exception):
    """Base of every error lmsd reports to a person. The message is meant to be read."""

    default_code: ClassVar[str] = "error"

    def __init__(self, message: str = "", *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code or self.default_code


class Invalid(LmsdError):
    """The input breaks a rule; changing the input fixes it."""

    default_code = "invalid"


class NotFound(LmsdError):
    default_code = "not_found"


class Conflict(LmsdError):
    """The input is fine but the current state refuses it (a taken code, no attempts left)."""

    default_code = "conflict"


class Forbidden(LmsdError):
    default_code = "forbidden"


class Unauthorized(LmsdError):
    default_code = "unauthorized"


class OperationFailed(LmsdError):
    """An operator-facing step (start, backup, upgrade) could not complete."""

    default_code = "operation_failed"


class PreconditionFailed(LmsdError):
    """The client's If-Match names a version that is no longer current."""

    default_code = "precondition_failed"


class PreconditionRequired(LmsdError):
    """A change that needs the version the client read (If-Match) came without it."""

    default_code = "precondition_required"


class TooManyRequests(LmsdError):
    default_code = "too_many_requests"
