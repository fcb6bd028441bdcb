"""Every endpoint × role × campus: nobody of another campus sees or changes a campus's data.

Campus A has an admin, an instructor who teaches the course, an enrolled learner and a learner
who is not enrolled. Campus B (created through the API by the platform admin) has an admin, an
instructor and a learner. For each endpoint the table names who of campus A may use it; every
other A actor must get 403 (or 404 where existence itself is private), and every B actor 404.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.api import PASSWORD, Person, admin, client, course, login, person
from tests.db import Database
from tests.media import make_clip, uploaded_video
from tests.media.test_video_api import make_ready


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()

A_ACTORS = ("a_admin", "a_instructor", "a_learner", "a_outsider")
B_ACTORS = ("b_admin", "b_instructor", "b_learner")


@dataclass
class Case:
    method: str
    path: str
    allowed: set[str]
    body: dict | None = None  # type: ignore[type-arg]
    ok: set[int] = field(default_factory=lambda: {200})
    hidden: set[str] = field(default_factory=set)  # A actors who get 404 (existence is private)
    if_match: bool = False
    headers: dict[str, str] = field(default_factory=dict)


async def _setup(c, db: Database) -> tuple[dict[str, Person], dict[str, str]]:  # type: ignore[no-untyped-def]
    root = await admin(c, db)
    people = {"a_admin": root}
    people["a_instructor"] = await person(c, root, "instructor")
    people["a_learner"] = await person(c, root, "learner")
    people["a_outsider"] = await person(c, root, "learner")
    host = f"b-{uuid.uuid4().hex[:6]}.example"
    r = await c.post("/api/v1/campuses", headers=root.h, json={"name": "Campus B", "host": host, "admin_email": "admin@b.example", "admin_password": PASSWORD})
    assert r.status_code == 201, r.text
    b_id = r.json()["id"]
    tok = await login(c, "admin@b.example", PASSWORD, b_id)
    me = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {tok['access_token']}"})).json()
    assert me["campus_id"] == b_id and me["platform_admin"] is False
    people["b_admin"] = Person(me["id"], me["email"], tok["access_token"], "admin")
    people["b_instructor"] = await person(c, people["b_admin"], "instructor", b_id)
    people["b_learner"] = await person(c, people["b_admin"], "learner", b_id)

    teacher = people["a_instructor"]
    crs = await course(c, teacher)
    draft = await course(c, teacher, publish=False)
    module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "M"})).json()
    lesson = (await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json={"title": "L", "body": "secret A content"})).json()
    quiz = (await c.post(f"/api/v1/courses/{crs['id']}/quizzes", headers=teacher.h, json={"title": "Q", "questions": [{"kind": "single", "prompt": "?", "options": ["a", "b"], "answer": 0}]})).json()
    enrolment = (await c.post(f"/api/v1/courses/{crs['id']}/enrol", headers=people["a_learner"].h)).json()
    # B has its own course, to prove lists are scoped rather than empty.
    b_course = await course(c, people["b_instructor"])
    clip = make_clip(Path(tempfile.gettempdir()) / "lmsd-test-clip.mp4")
    video = await uploaded_video(c, teacher.h, crs["id"], clip)  # type: ignore[arg-type]
    await make_ready(db, video)
    ids = {
        "course": crs["id"], "draft": draft["id"], "module": module["id"], "lesson": lesson["id"], "quiz": quiz["id"],
        "enrolment": enrolment["id"], "a_learner": people["a_learner"].id, "a_outsider": people["a_outsider"].id,
        "a_instructor": teacher.id, "b_course": b_course["id"], "b_campus": b_id, "video": video,
    }
    return people, ids


def _cases(ids: dict[str, str]) -> list[Case]:
    staff = {"a_admin", "a_instructor"}
    members = set(A_ACTORS)
    return [
        Case("GET", f"/api/v1/courses/{ids['course']}", members),
        Case("GET", f"/api/v1/courses/{ids['draft']}", staff, hidden={"a_learner", "a_outsider"}),
        Case("PATCH", f"/api/v1/courses/{ids['course']}", staff, {"summary": "edited"}, if_match=True),
        Case("PATCH", f"/api/v1/courses/{ids['draft']}", staff, {"summary": "edited"}, if_match=True, hidden={"a_learner", "a_outsider"}),
        Case("POST", f"/api/v1/courses/{ids['course']}/modules", staff, {"title": "New"}, ok={201}),
        Case("PUT", f"/api/v1/courses/{ids['course']}/modules/order", staff, {"ids": [ids["module"]]}, ok={204, 422}),
        Case("POST", f"/api/v1/courses/{ids['course']}/instructors", staff, {"user_id": ids["a_instructor"]}, ok={204}),
        Case("PATCH", f"/api/v1/modules/{ids['module']}", staff, {"title": "Renamed"}, if_match=True),
        Case("POST", f"/api/v1/modules/{ids['module']}/lessons", staff, {"title": "More"}, ok={201}),
        # before any case enrols a_outsider
        Case("GET", f"/api/v1/courses/{ids['course']}/videos", staff | {"a_learner"}),
        Case("GET", f"/api/v1/videos/{ids['video']}", staff | {"a_learner"}, hidden={"a_outsider"}),
        Case("GET", f"/api/v1/videos/{ids['video']}/playback", staff | {"a_learner"}, hidden={"a_outsider"}),
        Case("PATCH", f"/api/v1/videos/{ids['video']}", staff, {"title": "Renamed"}, hidden={"a_outsider"}),
        Case("POST", f"/api/v1/videos/{ids['video']}/transcribe", staff, {"language": "en"}, ok={202}, hidden={"a_outsider"}),
        Case("POST", "/api/v1/uploads", staff, ok={201}, headers={
            "tus-resumable": "1.0.0", "upload-length": "1000",
            "upload-metadata": f"course_id {b64(ids['course'])},filename {b64('a.mp4')},filetype {b64('video/mp4')}"}),
        Case("GET", f"/api/v1/lessons/{ids['lesson']}", staff | {"a_learner"}),
        Case("PATCH", f"/api/v1/lessons/{ids['lesson']}", staff, {"title": "Edited"}, if_match=True),
        Case("GET", f"/api/v1/quizzes/{ids['quiz']}", staff | {"a_learner"}),
        Case("POST", f"/api/v1/quizzes/{ids['quiz']}/attempts", {"a_learner"}, {"answers": {}}, ok={201}),
        Case("GET", f"/api/v1/courses/{ids['course']}/gradebook", staff),
        Case("GET", f"/api/v1/courses/{ids['course']}/grades/me", {"a_learner"}),
        Case("GET", f"/api/v1/courses/{ids['course']}/enrolments", staff),
        Case("POST", f"/api/v1/courses/{ids['course']}/enrolments", staff, {"user_id": ids["a_outsider"]}, ok={201, 409}),
        Case("PATCH", f"/api/v1/enrolments/{ids['enrolment']}", staff, {"status": "active"}),
        Case("POST", f"/api/v1/courses/{ids['course']}/enrol", {"a_outsider", "a_instructor", "a_learner"}, ok={201, 409}),
        Case("GET", f"/api/v1/enrolments/{ids['enrolment']}/progress", staff | {"a_learner"}, hidden={"a_outsider"}),
        Case("POST", "/api/v1/learning/events", {"a_learner"},
             {"events": [{"enrolment_id": ids["enrolment"], "type": "lesson_started", "lesson_id": ids["lesson"]}]},
             ok={202}, hidden=members - {"a_learner"}),
        Case("GET", "/api/v1/xapi/statements", members | set(B_ACTORS)),  # each sees what is theirs
        Case("GET", f"/api/v1/users/{ids['a_learner']}", {"a_admin", "a_learner"}),
        Case("POST", f"/api/v1/users/{ids['a_learner']}/password-reset", {"a_admin"}, ok={201}),
        Case("GET", "/api/v1/users", {"a_admin", "b_admin"}),
        Case("POST", "/api/v1/campuses", {"a_admin"}, {"name": "C", "host": f"c-{uuid.uuid4().hex[:6]}.example", "admin_email": "x@c.example", "admin_password": PASSWORD}, ok={201, 409}),
    ]


async def test_every_endpoint_role_and_campus(database: Database) -> None:
    async with client(database) as c:
        people, ids = await _setup(c, database)
        failures = []
        for case in _cases(ids):
            for actor in (*A_ACTORS, *B_ACTORS):
                headers = {**people[actor].h, **case.headers}
                if case.if_match:
                    headers["if-match"] = "*"
                r = await c.request(case.method, case.path, headers=headers, json=case.body)
                global_endpoint = case.path in ("/api/v1/users", "/api/v1/campuses")
                if actor in case.allowed:
                    expected = case.ok
                elif actor.startswith("b_") and not global_endpoint or actor in case.hidden:
                    expected = {404}
                else:
                    expected = {403}
                if r.status_code not in expected:
                    failures.append(f"{case.method} {case.path} as {actor}: {r.status_code}, expected {expected}")
                if r.status_code >= 400:
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert "secret A content" not in r.text
        assert not failures, "\n".join(failures)

        # Lists are scoped: B never sees A's ids, A never sees B's.
        a_ids = {ids["course"], ids["a_learner"], ids["a_outsider"], ids["a_instructor"]}
        for actor in B_ACTORS:
            for path in ("/api/v1/courses?limit=100", "/api/v1/courses?limit=100&status=draft", "/api/v1/me/courses", "/api/v1/campuses",
                         "/api/v1/xapi/statements?limit=500"):
                body = (await c.get(path, headers=people[actor].h)).text
                assert not any(i in body for i in a_ids), (actor, path)
        b_users = (await c.get("/api/v1/users?limit=100", headers=people["b_admin"].h)).json()
        assert {u["id"] for u in b_users["items"]} == {people[a].id for a in B_ACTORS}
        catalog_a = (await c.get("/api/v1/courses?limit=100", headers=people["a_learner"].h)).text
        assert ids["b_course"] not in catalog_a
        campuses = (await c.get("/api/v1/campuses", headers=people["b_admin"].h)).json()
        assert [x["id"] for x in campuses] == [ids["b_campus"]]
