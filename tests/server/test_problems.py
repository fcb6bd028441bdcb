"""problem+json through the real HTTP API: the status from the edge's table, a stable ``code``
and the ``field`` the error is about."""

from __future__ import annotations

from tests.api import admin, client, course, person
from tests.db import Database

PROBLEM = "application/problem+json"


async def test_a_taken_course_code_names_the_field_and_the_code(database: Database) -> None:
    async with client(database) as c:
        teacher = await person(c, await admin(c, database), "instructor")
        taken = (await course(c, teacher, publish=False))["code"]
        r = await c.post("/api/v1/courses", headers=teacher.h, json={"code": taken, "title": "Again"})
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
        body = r.json()
        assert body["code"] == "course.code_taken" and body["field"] == "code"
        assert body["title"] == "Conflict" and body["status"] == 409 and taken in body["detail"]


async def test_an_invalid_field_of_the_domain_names_the_field(database: Database) -> None:
    async with client(database) as c:
        teacher = await person(c, await admin(c, database), "instructor")
        cid = (await course(c, teacher, publish=False))["id"]
        module = await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Week 1"})
        assert module.status_code == 201, module.text
        r = await c.post(f"/api/v1/modules/{module.json()['id']}/lessons", headers=teacher.h, json={"title": "Film", "kind": "video"})
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "lesson.video_missing" and r.json()["field"] == "video_id"
        # nothing of the refused lesson was kept
        outline = (await c.get(f"/api/v1/courses/{cid}", headers=teacher.h)).json()
        assert "Film" not in str(outline)


async def test_a_malformed_field_names_the_field(database: Database) -> None:
    async with client(database) as c:
        teacher = await person(c, await admin(c, database), "instructor")
        r = await c.post("/api/v1/courses", headers=teacher.h, json={"code": "OK-1", "title": 42})
        assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "request.invalid" and r.json()["field"] == "title"


async def test_an_error_of_no_field_has_no_field_and_a_generic_code(database: Database) -> None:
    async with client(database) as c:
        r = await c.get("/api/v1/courses")  # no token
        assert r.status_code == 401 and r.json()["code"] == "unauthorized" and "field" not in r.json()
        r = await c.get("/api/v1/no-such-thing")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
