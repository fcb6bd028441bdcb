"""Courses, modules, lessons, enrolments and quizzes through the HTTP API on real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.api import admin, client, course, person
from tests.db import Database


async def test_course_lifecycle_with_etags_and_visibility(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        learner = await person(c, adm, "learner")
        r = await c.post("/api/v1/courses", headers=teacher.h, json={"code": "MATH101", "title": "Calculus", "language": "en", "tags": ["maths", "maths"]})
        assert r.status_code == 201 and r.headers["etag"] == 'W/"1"'
        cid = r.json()["id"]
        assert r.json()["status"] == "draft" and r.json()["tags"] == ["maths"]
        # Drafts are invisible to learners: not in the catalog, 404 by id.
        assert (await c.get(f"/api/v1/courses/{cid}", headers=learner.h)).status_code == 404
        catalog = (await c.get("/api/v1/courses", headers=learner.h, params={"limit": 100})).json()
        assert cid not in [x["id"] for x in catalog["items"]]
        drafts = (await c.get("/api/v1/courses", headers=teacher.h, params={"status": "draft", "limit": 100})).json()
        assert cid in [x["id"] for x in drafts["items"]]
        # Same code twice: conflict.
        dup = await c.post("/api/v1/courses", headers=teacher.h, json={"code": "MATH101", "title": "Again"})
        assert dup.status_code == 409 and dup.headers["content-type"].startswith("application/problem+json")
        # Updates need the current ETag.
        assert (await c.patch(f"/api/v1/courses/{cid}", headers=teacher.h, json={"status": "published"})).status_code == 428
        stale = await c.patch(f"/api/v1/courses/{cid}", headers={**teacher.h, "if-match": 'W/"7"'}, json={"status": "published"})
        assert stale.status_code == 412
        ok = await c.patch(f"/api/v1/courses/{cid}", headers={**teacher.h, "if-match": 'W/"1"'}, json={"status": "published", "self_enrol": True})
        assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'
        again = await c.patch(f"/api/v1/courses/{cid}", headers={**teacher.h, "if-match": 'W/"1"'}, json={"title": "Lost update"})
        assert again.status_code == 412
        # A learner may not edit.
        assert (await c.patch(f"/api/v1/courses/{cid}", headers={**learner.h, "if-match": 'W/"2"'}, json={"title": "x"})).status_code == 403

        # Modules and lessons, ordered, reorderable.
        m1 = (await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Limits"})).json()
        m2 = (await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Derivatives"})).json()
        m0 = (await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Intro", "position": 0})).json()
        l1 = (await c.post(f"/api/v1/modules/{m1['id']}/lessons", headers=teacher.h, json={"title": "Epsilon", "body": "$\\epsilon$ <b>bold</b>"})).json()
        l2 = (await c.post(f"/api/v1/modules/{m1['id']}/lessons", headers=teacher.h, json={"title": "Delta"})).json()
        bad = await c.post(f"/api/v1/modules/{m1['id']}/lessons", headers=teacher.h, json={"title": "V", "kind": "video"})
        assert bad.status_code == 422 and "video_id" in bad.json()["detail"]
        outline = (await c.get(f"/api/v1/courses/{cid}", headers=learner.h)).json()
        assert [m["title"] for m in outline["modules"]] == ["Intro", "Limits", "Derivatives"]
        assert [ls["title"] for ls in outline["modules"][1]["lessons"]] == ["Epsilon", "Delta"]
        assert outline["instructors"][0]["id"] == teacher.id
        r = await c.put(f"/api/v1/courses/{cid}/modules/order", headers=teacher.h, json={"ids": [m2["id"], m1["id"], m0["id"]]})
        assert r.status_code == 204
        r = await c.put(f"/api/v1/modules/{m1['id']}/lessons/order", headers=teacher.h, json={"ids": [l2["id"], l1["id"]]})
        assert r.status_code == 204
        bad_order = await c.put(f"/api/v1/courses/{cid}/modules/order", headers=teacher.h, json={"ids": [m2["id"]]})
        assert bad_order.status_code == 422
        outline = (await c.get(f"/api/v1/courses/{cid}", headers=learner.h)).json()
        assert [m["title"] for m in outline["modules"]] == ["Derivatives", "Limits", "Intro"]
        assert [ls["title"] for ls in outline["modules"][1]["lessons"]] == ["Delta", "Epsilon"]

        # Lesson content needs an enrolment.
        assert (await c.get(f"/api/v1/lessons/{l1['id']}", headers=learner.h)).status_code == 403
        e = await c.post(f"/api/v1/courses/{cid}/enrol", headers=learner.h)
        assert e.status_code == 201 and e.json()["status"] == "active"
        assert (await c.post(f"/api/v1/courses/{cid}/enrol", headers=learner.h)).status_code == 409
        lesson = await c.get(f"/api/v1/lessons/{l1['id']}", headers=learner.h)
        assert lesson.status_code == 200 and lesson.json()["body"] == "$\\epsilon$ <b>bold</b>"  # stored verbatim
        mine = (await c.get("/api/v1/me/courses", headers=learner.h)).json()
        assert [x["id"] for x in mine["enrolled"]] == [cid]
        # Staff see enrolments; learners do not.
        assert (await c.get(f"/api/v1/courses/{cid}/enrolments", headers=learner.h)).status_code == 403
        listed = (await c.get(f"/api/v1/courses/{cid}/enrolments", headers=teacher.h)).json()
        assert [x["user_id"] for x in listed["items"]] == [learner.id]
        # Withdraw yourself; staff re-enrol.
        r = await c.patch(f"/api/v1/enrolments/{e.json()['id']}", headers=learner.h, json={"status": "withdrawn"})
        assert r.status_code == 200 and r.json()["status"] == "withdrawn"
        assert (await c.get(f"/api/v1/lessons/{l1['id']}", headers=learner.h)).status_code == 403
        r = await c.post(f"/api/v1/courses/{cid}/enrolments", headers=teacher.h, json={"user_id": learner.id})
        assert r.status_code == 201 and r.json()["status"] == "active"


async def test_self_enrol_only_when_open(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        learner = await person(c, adm, "learner")
        closed = await course(c, teacher, self_enrol=False)
        r = await c.post(f"/api/v1/courses/{closed['id']}/enrol", headers=learner.h)
        assert r.status_code == 409 and "not open" in r.json()["detail"]


async def test_quiz_grading_limits_and_gradebook(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        ann = await person(c, adm, "learner")
        bob = await person(c, adm, "learner")
        crs = await course(c, teacher)
        quiz_in = {
            "title": "Check-in",
            "max_attempts": 2,
            "questions": [
                {"kind": "single", "prompt": "2+2?", "options": ["3", "4"], "answer": 1},
                {"kind": "multiple", "prompt": "Primes?", "options": ["2", "4", "5"], "answer": [0, 2], "points": 2},
                {"kind": "numeric", "prompt": "pi?", "answer": {"value": 3.1416, "tolerance": 0.01}},
                {"kind": "short_text", "prompt": "Capital of France?", "answer": ["Paris"]},
            ],
        }
        bad = await c.post(f"/api/v1/courses/{crs['id']}/quizzes", headers=teacher.h, json={**quiz_in, "questions": [{"kind": "single", "prompt": "x", "options": ["a", "b"], "answer": 5}]})
        assert bad.status_code == 422
        r = await c.post(f"/api/v1/courses/{crs['id']}/quizzes", headers=teacher.h, json=quiz_in)
        assert r.status_code == 201, r.text
        quiz = r.json()
        qids = [q["id"] for q in quiz["questions"]]
        for who in (ann, bob):
            assert (await c.post(f"/api/v1/courses/{crs['id']}/enrol", headers=who.h)).status_code == 201
        seen = (await c.get(f"/api/v1/quizzes/{quiz['id']}", headers=ann.h)).json()
        assert all("answer" not in q for q in seen["questions"])  # learners never see answers
        staff_view = (await c.get(f"/api/v1/quizzes/{quiz['id']}", headers=teacher.h)).json()
        assert staff_view["questions"][0]["answer"] == 1

        perfect = {qids[0]: 1, qids[1]: [2, 0], qids[2]: 3.14, qids[3]: "  paris "}
        r = await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=ann.h, json={"answers": perfect})
        assert r.status_code == 201 and r.json()["score"] == 5 and r.json()["max_score"] == 5
        wrong = {qids[0]: 0, qids[1]: [0], qids[2]: "3.14", qids[3]: "Lyon"}
        r = await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=ann.h, json={"answers": wrong})
        assert r.status_code == 201 and r.json()["score"] == 0 and r.json()["number"] == 2
        r = await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=ann.h, json={"answers": perfect})
        assert r.status_code == 409 and "no attempts left" in r.json()["detail"]
        r = await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=bob.h, json={"answers": {"not-a-question": 1}})
        assert r.status_code == 422
        r = await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=bob.h, json={"answers": {qids[0]: 1}})
        assert r.json()["score"] == 1
        # Staff cannot attempt (not enrolled); learners cannot read the gradebook.
        assert (await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=teacher.h, json={"answers": {}})).status_code == 403
        assert (await c.get(f"/api/v1/courses/{crs['id']}/gradebook", headers=ann.h)).status_code == 403
        book = (await c.get(f"/api/v1/courses/{crs['id']}/gradebook", headers=teacher.h)).json()
        rows = {row["user_id"]: row for row in book["rows"]}
        assert rows[ann.id]["grades"][0]["best_score"] == 5 and rows[ann.id]["grades"][0]["attempts"] == 2
        assert rows[bob.id]["total"] == 1 and rows[bob.id]["total_max"] == 5
        own = (await c.get(f"/api/v1/courses/{crs['id']}/grades/me", headers=bob.h)).json()
        assert [row["user_id"] for row in own["rows"]] == [bob.id]


async def test_cursor_pagination_and_filters(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        made = set()
        for i in range(23):
            r = await c.post("/api/v1/courses", headers=teacher.h, json={"code": f"PG{i}-{teacher.id[:6]}", "title": f"Paged {teacher.id[:6]} {i}", "tags": ["paged"], "language": "fr" if i % 2 else "en"})
            made.add(r.json()["id"])
        seen: list[str] = []
        cursor = None
        while True:
            params = {"status": "draft", "limit": 10, "q": f"Paged {teacher.id[:6]}"}
            if cursor:
                params["cursor"] = cursor
            page = (await c.get("/api/v1/courses", headers=teacher.h, params=params)).json()
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == 23 and set(seen) == made and seen == sorted(seen)
        fr = (await c.get("/api/v1/courses", headers=teacher.h, params={"status": "draft", "language": "fr", "q": f"Paged {teacher.id[:6]}", "limit": 100})).json()
        assert len(fr["items"]) == 11
        for bad in ({"cursor": "!!!"}, {"cursor": "eyJ4IjoxfQ"}, {"limit": 0}, {"limit": 1000}, {"status": "deleted"}):
            r = await c.get("/api/v1/courses", headers=teacher.h, params=bad)
            assert r.status_code in (400, 422), (bad, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("text", ["'; DROP TABLE courses; --", "<script>alert(1)</script>", "Ünïcödé ✓ \u202e", "%_\\"])
async def test_injection_strings_are_plain_data(database: Database, text: str) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        teacher = await person(c, adm, "instructor")
        r = await c.post("/api/v1/courses", headers=teacher.h, json={"code": f"INJ-{teacher.id[:8]}", "title": text, "summary": text, "tags": [text]})
        assert r.status_code == 201, r.text
        got = (await c.get(f"/api/v1/courses/{r.json()['id']}", headers=teacher.h)).json()["course"]
        assert got["title"] == text and got["summary"] == text and got["tags"] == [text]
        found = (await c.get("/api/v1/courses", headers=teacher.h, params={"status": "draft", "q": text, "limit": 100})).json()
        assert r.json()["id"] in [x["id"] for x in found["items"]]
        cid = r.json()["id"]
        # every other free-text field: module and lesson titles, lesson body, quiz texts, names
        m = await c.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": text})
        lesson = await c.post(f"/api/v1/modules/{m.json()['id']}/lessons", headers=teacher.h, json={"title": text, "body": text})
        assert (await c.get(f"/api/v1/lessons/{lesson.json()['id']}", headers=teacher.h)).json()["body"] == text
        quiz = await c.post(f"/api/v1/courses/{cid}/quizzes", headers=teacher.h, json={
            "title": text, "questions": [{"kind": "short_text", "prompt": text, "answer": [text]}]})
        assert quiz.status_code == 201
        got_quiz = (await c.get(f"/api/v1/quizzes/{quiz.json()['id']}", headers=teacher.h)).json()
        assert got_quiz["title"] == text and got_quiz["questions"][0]["prompt"] == text
        u = await c.post("/api/v1/users", headers=adm.h, json={"email": f"inj{uuid.uuid4().hex[:6]}@a.example", "display_name": text, "role": "learner", "password": "x" * 16})
        assert u.status_code == 201 and u.json()["display_name"] == text
        outline = (await c.get(f"/api/v1/courses/{cid}", headers=teacher.h)).json()
        assert outline["modules"][0]["title"] == text and outline["modules"][0]["lessons"][0]["title"] == text
