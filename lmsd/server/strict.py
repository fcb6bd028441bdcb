"""Request bodies are read strictly, as the OpenAPI document describes them.

Litestar converts a JSON body to the handler's ``data`` type with msgspec's lax rules, which take
``0`` for ``false`` and a number of seconds for a date-time: requests the document refuses would
be accepted. :class:`StrictRequest` converts the body to that type itself, with msgspec's strict
rules, and hands Litestar the finished value (which it passes through unchanged). A mismatch is
the same 400 problem Litestar gives (``field`` names the key). A number with no fraction is an
integer, as JSON Schema counts it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

_AT = re.compile(r" - at `\$\.?(?P<key>[^`]*)`$")


def _integral(value: Any) -> Any:
    """JSON has one number type: ``2.0`` is the integer 2 (JSON Schema says so too), a float
    field takes an integer anyway."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


def _body_type(request: Request[Any, Any, Any]) -> Any:
    try:
        parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    except (AttributeError, KeyError):
        return None
    return None if parameter is None else parameter.annotation


class StrictRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        value = await super().json()
        target = _body_type(self)
        if target is None or value is None:
            return value
        try:
            return msgspec.convert(_integral(value), target, strict=True)
        except msgspec.ValidationError as exc:
            text = str(exc)
            found = _AT.search(text)
            error: dict[str, str] = {"message": _AT.sub("", text), "source": "body"}
            if found and found["key"]:
                error["key"] = found["key"]
            raise ValidationException(
                detail=f"Validation failed for {self.method} {self.url.path}", extra=[error]
            ) from exc
