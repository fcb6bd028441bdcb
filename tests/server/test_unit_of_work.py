"""The request's unit of work on the real app and real PostgreSQL: a response's status decides
whether the handler's writes stay (2xx, 3xx) or go (4xx, 5xx, an exception)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Redirect
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.app import create_app
from lmsd.errors import Conflict
from lmsd.server.consistency import LSN_COOKIE, LSN_HEADER
from tests.db import Database

PROBE = "INSERT INTO courses (campus_id, id, code, title) VALUES (:campus, :id, :code, 'unit of work probe')"


async def _write(db: AsyncSession, request: Request[Any, Any, State], code: str) -> None:
    campus = uuid.UUID(request.app.state.settings.campus.id)
    await db.execute(text(PROBE), {"campus": campus, "id": uuid.uuid4(), "code": code})


@post("/test/uow/answer/{status:int}/{code:str}", include_in_schema=False)
async def write_then_answer(db: AsyncSession, request: Request[Any, Any, State], status: int, code: str) -> Response[Any]:
    await _write(db, request, code)
    if 300 <= status < 400:
        return Redirect("/", status_code=status)  # type: ignore[arg-type]  # 302 or 303 here
    return Response(None if status == 204 else {"code": code}, status_code=status)


@post("/test/uow/raise/{code:str}", include_in_schema=False)
async def write_then_refuse(db: AsyncSession, request: Request[Any, Any, State], code: str) -> None:
    await _write(db, request, code)
    raise Conflict("refused after writing", field="code", code="probe.refused")


@post("/test/uow/crash/{code:str}", include_in_schema=False)
async def write_then_crash(db: AsyncSession, request: Request[Any, Any, State], code: str) -> None:
    await _write(db, request, code)
    raise RuntimeError("a bug after writing")


@post("/test/uow/early/{code:str}", include_in_schema=False)
async def commit_early_then_fail(db: AsyncSession, request: Request[Any, Any, State], code: str) -> Response[Any]:
    """A service's early commit (a failed sign-in's counter) stands although the request fails."""
    await _write(db, request, f"{code}-early")
    await db.commit()
    await _write(db, request, code)
    return Response({"detail": "form has errors"}, status_code=422)


@get("/test/uow/count/{code:str}", include_in_schema=False)
async def count_rows(db: AsyncSession, code: str) -> int:
    return int(await db.scalar(text("SELECT count(*) FROM courses WHERE code = :code"), {"code": code}) or 0)


@pytest.fixture
async def app(database: Database) -> AsyncIterator[Litestar]:
    app = create_app(database.settings, database.secrets)
    for handler in (write_then_answer, write_then_refuse, write_then_crash, commit_early_then_fail, count_rows):
        app.register(handler)
    yield app


async def _count(c: AsyncTestClient[Litestar], code: str) -> int:
    """Through the app's own session (the test client runs the app on its own event loop)."""
    r = await c.get(f"/test/uow/count/{code}")
    assert r.status_code == 200, r.text
    return int(r.json())


def _code() -> str:
    return f"UOW-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("status", [200, 201, 204, 303, 302])
async def test_success_and_redirect_commit_with_the_lsn_token(app: Litestar, status: int) -> None:
    code = _code()
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        r = await c.post(f"/test/uow/answer/{status}/{code}", follow_redirects=False)
        assert r.status_code == status, r.text
        assert await _count(c, code) == 1
        # read-your-writes: the token of the commit is on the response, header and cookie
        assert r.headers[LSN_HEADER].count("/") == 1 and LSN_COOKIE in r.cookies


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
async def test_an_error_status_after_writing_leaves_nothing(app: Litestar, status: int) -> None:
    code = _code()
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        r = await c.post(f"/test/uow/answer/{status}/{code}")
        assert r.status_code == status
        assert await _count(c, code) == 0
        assert LSN_HEADER not in r.headers  # nothing was committed, so no token


async def test_a_domain_error_after_writing_rolls_back_and_answers_problem_json(app: Litestar) -> None:
    code = _code()
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        r = await c.post(f"/test/uow/raise/{code}")
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "probe.refused" and r.json()["field"] == "code"
        assert await _count(c, code) == 0


async def test_an_exception_after_writing_rolls_back(app: Litestar) -> None:
    code = _code()
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        r = await c.post(f"/test/uow/crash/{code}")
        assert r.status_code == 500
        assert r.json()["detail"] == "the server could not complete the request"  # nothing internal
        assert await _count(c, code) == 0


async def test_an_early_commit_stands_and_its_token_reaches_the_failed_response(app: Litestar) -> None:
    code = _code()
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        r = await c.post(f"/test/uow/early/{code}")
        assert r.status_code == 422
        assert await _count(c, f"{code}-early") == 1
        assert await _count(c, code) == 0
        assert LSN_HEADER in r.headers


async def test_sessions_go_back_to_the_pool(app: Litestar) -> None:
    """Every request's session is closed, whatever its outcome: the pool does not run dry."""
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        for i in range(12):  # more than pool_size + max_overflow would allow if connections leaked
            kind = ("answer/201", "answer/422", "raise", "crash")[i % 4]
            r = await c.post(f"/test/uow/{kind}/{_code()}")
            assert r.status_code in (201, 422, 409, 500)
        # every connection was given back: the next request still gets one at once
        assert await _count(c, "none") == 0
        assert app.state.engine.pool.checkedout() == 0
