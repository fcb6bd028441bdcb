"""Helpers for API tests: an in-process Litestar client on the real database, and people."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar.testing import AsyncTestClient

from lmsd.app import create_app
from tests.db import Database
from tests.support import ADMIN_PASSWORD

PASSWORD = "learning-is-fun-2026"


@dataclass
class Person:
    id: str
    email: str
    token: str
    role: str

    @property
    def h(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def client(db: Database) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(db.settings, db.secrets)
    async with AsyncTestClient(app=app, base_url="http://a.example") as c:
        yield c


async def login(c: AsyncTestClient, email: str, password: str, campus: str | None = None) -> dict:  # type: ignore[type-arg]
    body = {"email": email, "password": password}
    if campus:
        body["campus"] = campus
    r = await c.post("/api/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def admin(c: AsyncTestClient, db: Database) -> Person:  # type: ignore[type-arg]
    tok = await login(c, db.settings.campus.admin_email, ADMIN_PASSWORD)
    me = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {tok['access_token']}"})).json()
    return Person(me["id"], me["email"], tok["access_token"], "admin")


async def person(c: AsyncTestClient, by: Person, role: str, campus: str | None = None) -> Person:  # type: ignore[type-arg]
    email = f"{role}-{uuid.uuid4().hex[:8]}@a.example"
    r = await c.post("/api/v1/users", headers=by.h, json={"email": email, "display_name": f"{role.title()} {email[:12]}", "role": role, "password": PASSWORD})
    assert r.status_code == 201, r.text
    tok = await login(c, email, PASSWORD, campus)
    return Person(r.json()["id"], email, tok["access_token"], role)


async def course(c: AsyncTestClient, by: Person, *, publish: bool = True, self_enrol: bool = True) -> dict:  # type: ignore[type-arg]
    r = await c.post("/api/v1/courses", headers=by.h, json={"code": f"C{uuid.uuid4().hex[:8]}", "title": "Linear Algebra", "self_enrol": self_enrol, "tags": ["maths"]})
    assert r.status_code == 201, r.text
    data = r.json()
    if publish:
        r = await c.patch(f"/api/v1/courses/{data['id']}", headers={**by.h, "if-match": r.headers["etag"]}, json={"status": "published"})
        assert r.status_code == 200, r.text
        data = r.json()
    return data


async def text_lessons(c: AsyncTestClient, by: Person, course_id: str, body: str = "# Hello") -> list[str]:  # type: ignore[type-arg]
    """A module "Week 1" with two text lessons, "Intro" and "More": their ids."""
    module = (await c.post(f"/api/v1/courses/{course_id}/modules", headers=by.h, json={"title": "Week 1"})).json()
    lessons = []
    for title in ("Intro", "More"):
        r = await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=by.h, json={"title": title, "body": body})
        assert r.status_code == 201, r.text
        lessons.append(r.json()["id"])
    return lessons
