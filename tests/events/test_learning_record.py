"""Learning activity recorded through the API and the portal: progress, grades and xAPI from the
events, one record whatever the entry point, conflicts, bad input and other campuses."""
from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api import PASSWORD, login, person
from tests.learning import client, learning_event, setup, wait_progress
from tests.support import Campus

pytestmark = pytest.mark.slow

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _valid_xapi(st: dict[str, Any]) -> None:
    """The parts of xAPI 1.0.3 §2.4 a statement of ours must satisfy."""
    uuid.UUID(st["id"])
    assert st["version"] == "1.0.3"
    account = st["actor"]["account"]
    assert st["actor"]["objectType"] == "Agent" and account["homePage"].startswith("http") and account["name"]
    assert st["verb"]["id"].startswith("http://adlnet.gov/expapi/verbs/") and st["verb"]["display"]["en-US"]
    assert st["object"]["objectType"] == "Activity" and st["object"]["id"].startswith("http")
    assert st["object"]["definition"]["type"].startswith(("http://adlnet.gov/expapi/activities/", "https://w3id.org/xapi/"))
    uuid.UUID(st["context"]["registration"])
    assert ISO.match(st["timestamp"]) and ISO.match(st["stored"])
    if "result" in st and "score" in st["result"]:
        score = st["result"]["score"]
        assert 0 <= score["scaled"] <= 1 and score["min"] <= score["raw"] <= score["max"]


async def test_learning_activity_becomes_progress_grades_and_xapi(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=2)
        me, enrolment = s.learners[0], s.enrolments[0]
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        batch = [
            learning_event(enrolment, "lesson_started", s.lessons["text"], occurred_at=t0.isoformat()),
            learning_event(enrolment, "lesson_completed", s.lessons["text"], occurred_at=(t0 + timedelta(seconds=30)).isoformat()),
            learning_event(enrolment, "lesson_completed", s.lessons["text"]),  # again: counted once
            learning_event(enrolment, "video_watched", s.lessons["video"], segments=[[0, 10_000], [5_000, 20_000]]),
            learning_event(enrolment, "video_watched", s.lessons["video"], segments=[[60_000, 61_000]]),
        ]
        r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": batch})
        assert r.status_code == 202, r.text
        # enrolment_created was version 1; five more
        assert r.json() == {"accepted": 5, "enrolments": [{"enrolment_id": enrolment, "version": 6}]}

        p = await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == 6)
        assert p["version"] == 6 and p["lessons_started"] == 1 and p["lessons_completed"] == 1
        assert p["watched_ms"] == 21_000 and p["lessons_total"] == 4 and p["completed_at"] is None
        video = next(x for x in p["lessons"] if x["lesson_id"] == s.lessons["video"])
        assert video["watched"] == [[0, 20_000], [60_000, 61_000]]

        # a quiz attempt is recorded by the quiz service through the outbox: submitted + graded
        r = await c.post(f"/api/v1/quizzes/{s.quiz_id}/attempts", headers=me.h, json={"answers": {}})
        assert r.status_code in (200, 201), r.text
        qid = (await c.get(f"/api/v1/quizzes/{s.quiz_id}", headers=me.h)).json()["questions"][0]["id"]
        r = await c.post(f"/api/v1/quizzes/{s.quiz_id}/attempts", headers=me.h, json={"answers": {qid: 0}})
        assert r.status_code in (200, 201), r.text
        p = await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == 10 and p["grades"])
        assert p["quiz_attempts"] == 2 and p["lessons_completed"] == 2  # the graded attempt completed the quiz lesson
        assert p["grades"] == [{"quiz_id": s.quiz_id, "attempts": 2, "best_score": 2.0, "max_score": 2.0}]

        # completing every lesson completes the course: the progress consumer emits course_completed
        rest = [learning_event(enrolment, "lesson_completed", s.lessons[k]) for k in ("text2", "video", "quiz")]
        r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": rest})
        assert r.status_code == 202, r.text
        p = await wait_progress(c, me, enrolment, lambda p: p["completed_at"] is not None)
        assert p["lessons_completed"] == 4 and p["version"] == 14 and p["events_applied"] == 14

        # the teacher sees it; another learner of the same course does not
        assert (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=s.teacher.h)).status_code == 200
        assert (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=s.learners[1].h)).status_code == 404

        # xAPI: one valid statement per event of the enrolment, newest first, filters and paging
        statements: list[dict[str, Any]] = []
        url = f"/api/v1/xapi/statements?agent={me.id}&limit=5"
        while url:
            for _ in range(100):
                r = await c.get(url, headers=me.h)
                assert r.status_code == 200, r.text
                if statements or len(r.json()["statements"]) == 5:
                    break
                await asyncio.sleep(0.2)
            assert r.headers["x-experience-api-version"] == "1.0.3"
            statements += r.json()["statements"]
            url = r.json()["more"]
        assert len(statements) == 14 and len({st["id"] for st in statements}) == 14
        for st in statements:
            _valid_xapi(st)
            assert st["actor"]["account"]["name"] == me.id and st["context"]["registration"] == enrolment
        stored = [st["stored"] for st in statements]
        assert stored == sorted(stored, reverse=True)
        verbs = {st["verb"]["id"].rsplit("/", 1)[1] for st in statements}
        assert verbs == {"registered", "attempted", "completed", "experienced", "scored"}
        scored = [st for st in statements if st["verb"]["id"].endswith("/scored")]
        assert sorted(st["result"]["score"]["raw"] for st in scored) == [0.0, 2.0]
        course_done = [st for st in statements if st["object"]["id"].endswith(f"/courses/{s.course['id']}") and st["verb"]["id"].endswith("/completed")]
        assert len(course_done) == 1
        lesson_iri = f"{shared_campus.url}/courses/{s.course['id']}/lessons/{s.lessons['text']}"
        r = await c.get("/api/v1/xapi/statements", headers=me.h, params={"activity": lesson_iri, "verb": "http://adlnet.gov/expapi/verbs/completed", "ascending": "true"})
        assert [st["object"]["id"] for st in r.json()["statements"]] == [lesson_iri, lesson_iri]
        since = statements[-1]["stored"]
        r = await c.get("/api/v1/xapi/statements", headers=me.h, params={"agent": me.id, "since": since, "limit": 100})
        assert 0 < len(r.json()["statements"]) < 14

        # learners see only their own statements; the teacher sees the course's; the admin all
        other = await c.get("/api/v1/xapi/statements", headers=s.learners[1].h, params={"agent": me.id})
        assert other.status_code == 200 and other.json()["statements"] == []
        teacher = await c.get("/api/v1/xapi/statements", headers=s.teacher.h, params={"agent": me.id, "limit": 100})
        assert len(teacher.json()["statements"]) == 14
        admin_view = await c.get("/api/v1/xapi/statements", headers=s.admin.h, params={"agent": me.id, "limit": 100})
        assert len(admin_view.json()["statements"]) == 14


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "no csrf-token meta in the page"
    return found.group(1)


async def _journey_by_api(c: Any, me: Any, course_id: str, lessons: list[str], quiz_id: str, answer: dict[str, int]) -> str:
    """Enrol, open and complete each lesson, open the quiz lesson and take the quiz: the API's way."""
    r = await c.post(f"/api/v1/courses/{course_id}/enrol", headers=me.h)
    assert r.status_code == 201, r.text
    enrolment = str(r.json()["id"])
    for lesson in lessons:
        kinds = ["lesson_started"] if lesson == lessons[-1] else ["lesson_started", "lesson_completed"]
        for kind in kinds:  # one request each, as the pages make them
            r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": [learning_event(enrolment, kind, lesson)]})
            assert r.status_code == 202, r.text
    r = await c.post(f"/api/v1/quizzes/{quiz_id}/attempts", headers=me.h, json={"answers": answer})
    assert r.status_code in (200, 201), r.text
    return enrolment


async def _journey_by_portal(campus: Campus, me: Any, course_id: str, lessons: list[str], answer: dict[str, int]) -> None:
    """The same journey through the portal's HTML forms: sign in, enrol, open each lesson, "Mark
    as complete", and submit the quiz form."""
    origin = {"origin": campus.url}
    async with client(campus) as web:
        r = await web.post("/login", data={"email": me.email, "password": PASSWORD}, headers=origin)
        assert r.status_code == 303, r.text
        token = _csrf((await web.get(f"/courses/{course_id}")).text)
        r = await web.post(f"/courses/{course_id}/enrol", data={"csrf_token": token}, headers=origin)
        assert r.status_code == 303, r.text
        for lesson in lessons:
            r = await web.get(f"/lessons/{lesson}")
            assert r.status_code == 200, r.text
            if lesson != lessons[-1]:
                r = await web.post(f"/lessons/{lesson}/complete", data={"csrf_token": token}, headers=origin)
                assert r.status_code == 303, r.text
        form = {"csrf_token": token, **{f"q-{q}": str(v) for q, v in answer.items()}}
        r = await web.post(f"/lessons/{lessons[-1]}/quiz", data=form, headers=origin)
        assert r.status_code == 200 and "2 out of 2 points" in r.text, r.text


async def _statements(c: Any, me: Any) -> list[tuple[str, str]]:
    """(verb, activity) of a learner's statements, oldest stored first (ties: by verb and activity)."""
    r = await c.get("/api/v1/xapi/statements", headers=me.h, params={"agent": me.id, "ascending": "true", "limit": 100})
    assert r.status_code == 200, r.text
    found = sorted((st["stored"], st["verb"]["id"].rsplit("/", 1)[1], st["object"]["id"]) for st in r.json()["statements"])
    return [(verb, activity) for _stored, verb, activity in found]


async def test_the_same_journey_by_api_and_by_portal_gives_the_same_record(shared_campus: Campus) -> None:
    """What completes a lesson is the domain's rule: a graded attempt at the quiz completes the
    quiz lesson, and with it the course, whichever way the learner took it."""
    async with client(shared_campus) as c:
        s = await setup(c, learners=0)
        api_learner, portal_learner = await person(c, s.admin, "learner"), await person(c, s.admin, "learner")  # type: ignore[arg-type]
        lessons = [s.lessons[k] for k in ("text", "text2", "video", "quiz")]
        question = (await c.get(f"/api/v1/quizzes/{s.quiz_id}", headers=s.teacher.h)).json()["questions"][0]["id"]
        answer = {question: 0}
        await _journey_by_api(c, api_learner, s.course["id"], lessons, s.quiz_id, answer)
        await _journey_by_portal(shared_campus, portal_learner, s.course["id"], lessons, answer)
        enrolled = (await c.get(f"/api/v1/courses/{s.course['id']}/enrolments", headers=s.teacher.h)).json()
        enrolment_of = {str(e["user_id"]): str(e["id"]) for e in enrolled["items"]}
        done = lambda p: p["lessons_completed"] == 4 and p["completed_at"] is not None and p["grades"]  # noqa: E731
        progress = [await wait_progress(c, who, enrolment_of[who.id], done) for who in (api_learner, portal_learner)]
        for _ in range(100):  # course_completed is applied after the attempt that caused it
            statements = [await _statements(c, who) for who in (api_learner, portal_learner)]
            if all(("completed", f"{shared_campus.url}/courses/{s.course['id']}") in st for st in statements):
                break
            await asyncio.sleep(0.2)
    by_api, by_portal = progress
    # the same lessons completed (the quiz lesson by its graded attempt), the same percent
    completed = [sorted(x["lesson_id"] for x in p["lessons"] if x["completed_at"]) for p in progress]
    assert completed[0] == completed[1] == sorted(lessons)
    percent = [round(100 * p["lessons_completed"] / p["lessons_total"]) for p in progress]
    assert percent == [100, 100]
    for name in ("lessons_started", "lessons_completed", "lessons_total", "quiz_attempts", "events_applied", "grades"):
        assert by_api[name] == by_portal[name], name
    assert by_api["grades"] == [{"quiz_id": s.quiz_id, "attempts": 1, "best_score": 2.0, "max_score": 2.0}]
    # the same xAPI verbs on the same activities in the same order, the course's completion last
    api_statements, portal_statements = statements
    assert api_statements == portal_statements
    course_iri = f"{shared_campus.url}/courses/{s.course['id']}"
    quiz_lesson = ("completed", f"{course_iri}/lessons/{s.lessons['quiz']}")
    assert quiz_lesson not in api_statements  # completion of the quiz lesson is the projection's, not an event
    assert [v for v, _ in api_statements] == [
        "registered", *["attempted", "completed"] * 3, "attempted", "attempted", "scored", "completed",
    ]
    assert api_statements[-1] == ("completed", course_iri)


async def test_a_concurrent_writer_gets_a_conflict_and_retries_without_loss(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        p = await wait_progress(c, me, enrolment, lambda p: p["version"] >= 1)
        seen = p["version"]

        async def write(lesson: str) -> Any:
            return await c.post(
                "/api/v1/learning/events",
                headers=me.h,
                json={"events": [learning_event(enrolment, "lesson_started", lesson)], "expected_versions": {enrolment: seen}},
            )

        first, second = await asyncio.gather(write(s.lessons["text"]), write(s.lessons["text2"]))
        codes = sorted([first.status_code, second.status_code])
        assert codes == [202, 409], (first.text, second.text)
        loser = first if first.status_code == 409 else second
        assert loser.headers["content-type"].startswith("application/problem+json")
        assert "another writer" in loser.json()["detail"]
        # the loser reloads and retries on the new version
        lost_lesson = s.lessons["text"] if loser is first else s.lessons["text2"]
        r = await c.post(
            "/api/v1/learning/events",
            headers=me.h,
            json={"events": [learning_event(enrolment, "lesson_started", lost_lesson)], "expected_versions": {enrolment: seen + 1}},
        )
        assert r.status_code == 202, r.text
        p = await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == seen + 2)
        assert p["lessons_started"] == 2


async def test_bad_learning_events_are_refused_and_nothing_is_recorded(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=2)
        me, enrolment = s.learners[0], s.enrolments[0]
        before = (await wait_progress(c, me, enrolment, lambda p: p["events_applied"] >= 1))["version"]
        good = learning_event(enrolment, "lesson_started", s.lessons["text"])
        future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        cases: list[tuple[Any, int, str]] = [
            ("{not json", 400, ""),
            ({"events": []}, 400, ""),
            ({"events": [good], "extra": 1}, 400, ""),
            ({"events": [{**good, "type": "hacked"}]}, 400, ""),
            ({"events": [{**good, "lesson_id": "not-a-uuid"}]}, 400, ""),
            ({"events": [good, {**good, "lesson_id": str(uuid.uuid4())}]}, 422, "not part of the enrolment's course"),
            ({"events": [{**good, "type": "video_watched", "segments": [[0, 10]]}]}, 422, "not a video lesson"),
            ({"events": [learning_event(enrolment, "video_watched", s.lessons["video"], segments=[[10, 5]])]}, 422, "does not end after"),
            ({"events": [learning_event(enrolment, "video_watched", s.lessons["video"])]}, 422, "at least one"),
            ({"events": [learning_event(enrolment, "video_watched", s.lessons["video"], segments=[[-1, 5]])]}, 400, ""),
            ({"events": [{**good, "segments": [[0, 5]]}]}, 422, "video_watched events only"),
            ({"events": [{**good, "occurred_at": future}]}, 422, "in the future"),
            ({"events": [{**good, "occurred_at": "2026-11-25T10:00:00"}]}, 422, "time zone"),
            ({"events": [good] * 1001}, 422, "at most 1000"),
            ({"events": [good], "expected_versions": {str(uuid.uuid4()): 1}}, 422, "without events"),
            ({"events": [good], "expected_versions": {enrolment: before + 5}}, 409, "another writer"),
            ({"events": [learning_event(s.enrolments[1], "lesson_started", s.lessons["text"])]}, 404, "no such enrolment"),
            ({"events": [learning_event(str(uuid.uuid4()), "lesson_started", s.lessons["text"])]}, 404, "no such enrolment"),
        ]
        for body, status, detail in cases:
            kwargs: dict[str, Any] = {"content": body, "headers": {**me.h, "content-type": "application/json"}} if isinstance(body, str) else {"json": body, "headers": me.h}
            r = await c.post("/api/v1/learning/events", **kwargs)
            assert r.status_code == status, (body if len(str(body)) < 300 else str(body)[:300], r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json"), r.text
            assert detail in r.json().get("detail", ""), r.text
        # without a token
        assert (await c.post("/api/v1/learning/events", json={"events": [good]})).status_code == 401
        # a withdrawn enrolment records nothing more
        other, other_enrolment = s.learners[1], s.enrolments[1]
        r = await c.patch(f"/api/v1/enrolments/{other_enrolment}", headers=other.h, json={"status": "withdrawn"})
        assert r.status_code == 200, r.text
        r = await c.post("/api/v1/learning/events", headers=other.h, json={"events": [learning_event(other_enrolment, "lesson_started", s.lessons["text"])]})
        assert r.status_code == 409 and "withdrawn" in r.json()["detail"]
        # nothing of the refused batches was recorded
        r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": [good]})
        assert r.status_code == 202 and r.json()["enrolments"][0]["version"] == before + 1
        for params in ({"since": "2026-11-25T10:00:00"}, {"cursor": "garbage!"}, {"limit": 0}, {"limit": 501}, {"agent": "x"}):
            r = await c.get("/api/v1/xapi/statements", headers=me.h, params=params)
            assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json"), (params, r.text)


async def test_a_learner_of_another_campus_sees_and_records_nothing_here(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        await c.post("/api/v1/learning/events", headers=me.h, json={"events": [learning_event(enrolment, "lesson_started", s.lessons["text"])]})
        host = f"b-{uuid.uuid4().hex[:6]}.example"
        r = await c.post("/api/v1/campuses", headers=s.admin.h, json={"name": "Campus B", "host": host, "admin_email": "admin@b.example", "admin_password": "learning-is-fun-2026"})
        assert r.status_code == 201, r.text
        b_id = r.json()["id"]
        tok = await login(c, "admin@b.example", "learning-is-fun-2026", b_id)  # type: ignore[arg-type]
        b_admin_h = {"authorization": f"Bearer {tok['access_token']}"}
        me_b = (await c.get("/api/v1/me", headers=b_admin_h)).json()
        from tests.api import Person

        b_learner = await person(c, Person(me_b["id"], me_b["email"], tok["access_token"], "admin"), "learner", b_id)  # type: ignore[arg-type]
        await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == 2)
        r = await c.post("/api/v1/learning/events", headers=b_learner.h, json={"events": [learning_event(enrolment, "lesson_completed", s.lessons["text"])]})
        assert r.status_code == 404
        assert (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=b_learner.h)).status_code == 404
        assert (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=b_admin_h)).status_code == 404
        for h in (b_learner.h, b_admin_h):
            r = await c.get("/api/v1/xapi/statements", headers=h, params={"agent": me.id})
            assert r.status_code == 200 and r.json()["statements"] == []
