"""One unit of work per request: its session commits only when the answer is a success.

``provide_session`` (the ``db`` dependency) opens a session and leaves it in the request's scope;
:func:`finish` (a ``before_send`` hook) ends it when the response starts: a 2xx or 3xx status
commits, any other rolls back. A page that answers 422 with its form, an API handler that raises
a domain error and a handler that crashes therefore all leave nothing behind, and no handler rolls
back by hand. Services may still commit early where an effect must stand although the request
fails (a failed sign-in's counter, a revoked token family).

The hook runs outside every middleware, so the commit is done before the status line leaves, and
the LSN of the request's writes (:mod:`lmsd.server.consistency`) is known in time for the
response's headers, also when only an early commit wrote. A commit that fails raises before the
response starts: the client gets a 500, never a success whose writes were lost.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.db.routing import Database, RoutingSession
from lmsd.server.consistency import add_token, client_lsn, remember

_SESSION_KEY = "lmsd.session"


def succeeded(status: int) -> bool:
    """Whether a response with this status keeps the request's writes (2xx and 3xx)."""
    return 200 <= status < 400


async def provide_session(state: State, request: Request[Any, Any, State]) -> AsyncSession:
    """The request's session. Reads may go to a read replica that has caught up with the
    client's LSN token; :func:`finish` commits or rolls back."""
    database: Database = state.database
    session = await database.session(min_lsn=client_lsn(request.headers, request.cookies))
    _state(request.scope)[_SESSION_KEY] = session
    return session


async def finish(message: Message, scope: Scope) -> None:
    """``before_send`` hook: end the unit of work when the response starts, then add the token."""
    if message["type"] != "http.response.start":
        return
    session: RoutingSession | None = _state(scope).pop(_SESSION_KEY, None)
    if session is not None:
        try:
            if succeeded(message["status"]):
                await session.commit()
            else:
                await session.rollback()
        finally:
            remember(scope, session.lsn)
            await session.close()
    add_token(message, scope)


def closing_middleware(app: ASGIApp) -> ASGIApp:
    """Closes (so rolls back) a session whose request ended without a response start: a
    cancelled request must give its connection back to the pool all the same."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == ScopeType.HTTP:
                left: RoutingSession | None = _state(scope).pop(_SESSION_KEY, None)
                if left is not None:
                    await left.close()

    return middleware


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


__all__ = ["closing_middleware", "finish", "provide_session", "succeeded"]
