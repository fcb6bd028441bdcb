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

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

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
    """Called by the session dependency after its commit, before the response starts."""
    if lsn is not None:
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_STATE_KEY] = max(lsn, state.get(_STATE_KEY, 0))


def lsn_middleware(app: ASGIApp) -> ASGIApp:
    """Adds the token to the response of any request whose unit of work wrote."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # The dependency writes into this very dict (Litestar's request.state wraps it).
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_token(message: Message) -> None:
            lsn = state.get(_STATE_KEY)
            if message["type"] == "http.response.start" and lsn is not None:
                token = format_lsn(lsn)
                cookie = f"{LSN_COOKIE}={token}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict"
                headers = [*message.get("headers", []), (LSN_HEADER.encode(), token.encode())]
                headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_token)

    return middleware
