"""Cursor pagination (keyset): stable under inserts, O(page) at any depth.

A cursor is opaque to clients: base64url of the last row's sort key. A cursor that does not
decode is bad input (Invalid -> 400), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lmsd.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 100
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_key(**parts: str) -> str:
    """A cursor for a sort key of one or more columns (each given as text)."""
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(cursor: str, **parsers: Callable[[str], Any]) -> dict[str, Any]:
    """The sort key of ``encode_key``, each part through its parser; anything else is Invalid."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return {name: parse(data[name]) for name, parse in parsers.items()}
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise Invalid("invalid cursor: pass back the next_cursor of a previous page unchanged") from None


def encode(last_id: uuid.UUID) -> str:
    return encode_key(a=str(last_id))


def decode(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    found: uuid.UUID = decode_key(cursor, a=uuid.UUID)["a"]
    return found


def limit_of(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def page_of(rows: Sequence[T], limit: int, key: str = "id") -> Page[T]:
    """``rows`` were fetched with ``limit + 1``: the extra row only says there is more."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, encode(getattr(items[-1], key)) if more and items else None)
