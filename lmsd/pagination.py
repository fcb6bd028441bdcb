"""Cursor pagination (keyset): stable under inserts, O(page) at any depth.

A cursor is opaque to clients (pass back a page's ``next_cursor`` unchanged), but its shape is
part of the contract: the published pattern says exactly which strings are cursors, so that
every string it allows names a position and every other string is refused (400). A cursor
for a list ordered by id is the last id as 32 hex digits; one for a list ordered by time then
id (xAPI statements) is ``<microseconds since 1970>.<id>``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Generic, TypeVar

from litestar.params import Parameter

from lmsd.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
ID_CURSOR = r"^[0-9a-f]{32}$"
TIME_ID_CURSOR = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The query parameters of a list endpoint, declared once: Litestar validates them and the
# OpenAPI document states the same constraints.
Cursor = Annotated[
    str | None,
    Parameter(pattern=ID_CURSOR, description="the next_cursor of the previous page, unchanged"),
]
TimeCursor = Annotated[
    str | None,
    Parameter(pattern=TIME_ID_CURSOR, description="the cursor in the previous page's `more` link, unchanged"),
]
Limit = Annotated[int | None, Parameter(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT})")]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _invalid() -> Invalid:
    return Invalid("invalid cursor: pass back the next_cursor of a previous page unchanged", field="cursor", code="pagination.bad_cursor")


def encode(last_id: uuid.UUID) -> str:
    return last_id.hex


def decode(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    if not re.fullmatch(ID_CURSOR, cursor):
        raise _invalid()
    return uuid.UUID(hex=cursor)


def encode_at(at: datetime, last_id: uuid.UUID) -> str:
    """A cursor for a list ordered by (time, id)."""
    return f"{(at - EPOCH) // timedelta(microseconds=1)}.{last_id.hex}"


def decode_at(cursor: str) -> tuple[datetime, uuid.UUID]:
    if not re.fullmatch(TIME_ID_CURSOR, cursor):
        raise _invalid()
    micros, hex_id = cursor.split(".")
    return EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)


def limit_of(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def page_of(rows: Sequence[T], limit: int, key: str = "id") -> Page[T]:
    """``rows`` were fetched with ``limit + 1``: the extra row only says there is more."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, encode(getattr(items[-1], key)) if more and items else None)
