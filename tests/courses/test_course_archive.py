"""A course copied to another campus through export/import round-trips without loss."""

from __future__ import annotations

import copy

from tests.api import PASSWORD, Person, admin, client, course, login, person
from tests.db import Database


async def test_export_import_round_trip_across_campuses(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        crs = await course(c, teacher)
        cid = crs["id"]
        quiz = (await c.post(f"/api/v1/courses/{cid}/quizzes", headers=teacher.h, json={
            "title": "Unit test", "max_attempts": 3,
            "questions": [
                {"kind": "single", "prompt": "Pick ✓", "options": ["a", "b"], "answer": 1, "points": 2},
                {"kind": "multiple", "prompt": "Many", "options": ["x", "y", "z"], "answer": [0, 2]},
                {"kind": "numeric", "prompt": "e?", "answer": {"value": 2.718, "tolerance": 0.001}},
                {"kind": "short_text", "prompt": "Say hi", "answer": ["Hello", "Hi"]},
            ]})).json()
        m1 = (await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Week 1"})).json()
        m2 = (await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Week 2"})).json()
        await c.post(f"/api/v1/modules/{m1['id']}/lessons", headers=teacher.h, json={"title": "Read", "body": "# Title\n\n$$e^{i\\pi}+1=0$$\n```py\nprint(1)\n```"})
        await c.post(f"/api/v1/modules/{m2['id']}/lessons", headers=teacher.h, json={"title": "Check", "kind": "quiz", "quiz_id": quiz["id"]})
        exported = await c.get(f"/api/v1/courses/{cid}/export", headers=teacher.h)
        assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
        archive = exported.json()
        assert archive["format"] == "lmsd-course" and archive["version"] == 1
        assert archive["modules"][1]["lessons"][0]["quiz"] == archive["quizzes"][0]["key"]

        # Another campus imports it.
        r = await c.post("/api/v1/campuses", headers=adm.h, json={"name": "Elsewhere", "host": f"x-{teacher.id[:6]}.example", "admin_email": "admin@x.example", "admin_password": PASSWORD})
        other_campus = r.json()["id"]
        tok = await login(c, "admin@x.example", PASSWORD, other_campus)
        other = Person("", "admin@x.example", tok["access_token"], "admin")
        imported = await c.post("/api/v1/courses/import", headers=other.h, json=archive)
        assert imported.status_code == 201, imported.text
        assert imported.json()["status"] == "draft" and imported.json()["id"] != cid
        again = (await c.get(f"/api/v1/courses/{imported.json()['id']}/export", headers=other.h)).json()
        assert again == archive  # nothing lost, nothing added

        # The imported quiz grades the same way.
        outline = (await c.get(f"/api/v1/courses/{imported.json()['id']}", headers=other.h)).json()
        assert [m["title"] for m in outline["modules"]] == ["Week 1", "Week 2"]

        # Same code on the same campus: conflict, unless renamed.
        dup = await c.post("/api/v1/courses/import", headers=other.h, json=archive)
        assert dup.status_code == 409
        renamed = await c.post("/api/v1/courses/import", headers=other.h, json=archive, params={"code": "COPY-2"})
        assert renamed.status_code == 201 and renamed.json()["code"] == "COPY-2"


async def test_bad_archives_are_refused(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        learner = await person(c, adm, "learner")
        good = {"format": "lmsd-course", "version": 1, "course": {"code": "ARC-1", "title": "T"}, "modules": [], "quizzes": []}
        bad_cases = {
            "foreign format": {**good, "format": "imscc"},
            "future version": {**good, "version": 9},
            "dangling quiz": {**good, "modules": [{"title": "M", "lessons": [{"title": "L", "kind": "quiz", "quiz": "nope"}]}]},
            "bad answer": {**good, "quizzes": [{"key": "k", "title": "Q", "max_attempts": 0, "questions": [{"kind": "single", "prompt": "?", "options": ["a"], "answer": 0}]}]},
            "unknown field": {**copy.deepcopy(good), "extra": 1},
        }
        for name, body in bad_cases.items():
            r = await c.post("/api/v1/courses/import", headers=teacher.h, json=body)
            assert r.status_code in (400, 422), (name, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        assert (await c.post("/api/v1/courses/import", headers=learner.h, json=good)).status_code == 403
