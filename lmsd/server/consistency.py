"""Read-your-writes over HTTP: the LSN token travels in a header (API clients) and a cookie
(browsers).

A response to a request that wrote carries ``X-Lmsd-LSN`` (the primary's WAL position right
after the commit) and sets the ``lmsd_lsn`` cookie to the same value. A request that sends it
back, as ``X-Lmsd-Min-LSN`` or the cookie, is only served by a replica that has replayed at
least that far (see :mod:`lmsd.db.routing`). Any worker honours any token: an LSN is global.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.types import Message, Scope

from lmsd.db.routing import format_lsn, parse_lsn

LSN_HEADER = "x-lmsd-lsn"
MIN_LSN_HEADER = "x-lmsd-min-lsn"
LSN_COOKIE = "lmsd_lsn"
# Long enough for any replica within max_replica_lag_ms to catch up; after that the token
# would be satisfied by every usable replica anyway.
COOKIE_MAX_AGE_S = 300
_STATE_KEY = "lmsd.lsn"


def client_lsn(headers: Mapping[str, str], cookies: Mapping[str, str]) -> int | None:
    """The newest position this client has seen (header or cookie); malformed ones are ignored."""
    seen = [parse_lsn(v) for v in (headers.get(MIN_LSN_HEADER, ""), cookies.get(LSN_COOKIE, "")) if v]
    known = [v for v in seen if v is not None]
    return max(known) if known else None


def remember(scope: Scope, lsn: int | None) -> None:
    """Called when the request's unit of work ends (:mod:`lmsd.server.unit_of_work`), before the
    response starts: the newest position this request wrote."""
    if lsn is not None:
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_STATE_KEY] = max(lsn, state.get(_STATE_KEY, 0))


def add_token(message: Message, scope: Scope) -> None:
    """Adds the token to a response start if the request wrote (header and cookie)."""
    lsn = scope.get("state", {}).get(_STATE_KEY)
    if message["type"] != "http.response.start" or lsn is None:
        return
    token = format_lsn(lsn)
    cookie = f"{LSN_COOKIE}={token}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict"
    message["headers"] = [
        *message.get("headers", []),
        (LSN_HEADER.encode(), token.encode()),
        (b"set-cookie", cookie.encode()),
    ]
