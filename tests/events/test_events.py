"""The event backbone on a running campus: learning events through the API → outbox → relay →
JetStream → projections; xAPI; optimistic concurrency; dead letters; replay equals live."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from lmsd.contracts.v1 import envelope_pb2, learning_pb2
from tests.api import PASSWORD, login, person
from tests.learning import client, setup, wait_progress
from tests.support import Campus, app_dsn, nats_connect

pytestmark = pytest.mark.slow

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _ev(enrolment: str, kind: str, lesson: str, **extra: Any) -> dict[str, Any]:
    return {"enrolment_id": enrolment, "type": kind, "lesson_id": lesson, **extra}


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
            _ev(enrolment, "lesson_started", s.lessons["text"], occurred_at=t0.isoformat()),
            _ev(enrolment, "lesson_completed", s.lessons["text"], occurred_at=(t0 + timedelta(seconds=30)).isoformat()),
            _ev(enrolment, "lesson_completed", s.lessons["text"]),  # again: counted once
            _ev(enrolment, "video_watched", s.lessons["video"], segments=[[0, 10_000], [5_000, 20_000]]),
            _ev(enrolment, "video_watched", s.lessons["video"], segments=[[60_000, 61_000]]),
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
        rest = [_ev(enrolment, "lesson_completed", s.lessons[k]) for k in ("text2", "video", "quiz")]
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
            r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": [_ev(enrolment, kind, lesson)]})
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
                json={"events": [_ev(enrolment, "lesson_started", lesson)], "expected_versions": {enrolment: seen}},
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
            json={"events": [_ev(enrolment, "lesson_started", lost_lesson)], "expected_versions": {enrolment: seen + 1}},
        )
        assert r.status_code == 202, r.text
        p = await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == seen + 2)
        assert p["lessons_started"] == 2


async def test_bad_learning_events_are_refused_and_nothing_is_recorded(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=2)
        me, enrolment = s.learners[0], s.enrolments[0]
        before = (await wait_progress(c, me, enrolment, lambda p: p["events_applied"] >= 1))["version"]
        good = _ev(enrolment, "lesson_started", s.lessons["text"])
        future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        cases: list[tuple[Any, int, str]] = [
            ("{not json", 400, ""),
            ({"events": []}, 400, ""),
            ({"events": [good], "extra": 1}, 400, ""),
            ({"events": [{**good, "type": "hacked"}]}, 400, ""),
            ({"events": [{**good, "lesson_id": "not-a-uuid"}]}, 400, ""),
            ({"events": [good, {**good, "lesson_id": str(uuid.uuid4())}]}, 422, "not part of the enrolment's course"),
            ({"events": [{**good, "type": "video_watched", "segments": [[0, 10]]}]}, 422, "not a video lesson"),
            ({"events": [_ev(enrolment, "video_watched", s.lessons["video"], segments=[[10, 5]])]}, 422, "does not end after"),
            ({"events": [_ev(enrolment, "video_watched", s.lessons["video"])]}, 422, "at least one"),
            ({"events": [_ev(enrolment, "video_watched", s.lessons["video"], segments=[[-1, 5]])]}, 400, ""),
            ({"events": [{**good, "segments": [[0, 5]]}]}, 422, "video_watched events only"),
            ({"events": [{**good, "occurred_at": future}]}, 422, "in the future"),
            ({"events": [{**good, "occurred_at": "2026-11-25T10:00:00"}]}, 422, "time zone"),
            ({"events": [good] * 1001}, 422, "at most 1000"),
            ({"events": [good], "expected_versions": {str(uuid.uuid4()): 1}}, 422, "without events"),
            ({"events": [good], "expected_versions": {enrolment: before + 5}}, 409, "another writer"),
            ({"events": [_ev(s.enrolments[1], "lesson_started", s.lessons["text"])]}, 404, "no such enrolment"),
            ({"events": [_ev(str(uuid.uuid4()), "lesson_started", s.lessons["text"])]}, 404, "no such enrolment"),
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
        r = await c.post("/api/v1/learning/events", headers=other.h, json={"events": [_ev(other_enrolment, "lesson_started", s.lessons["text"])]})
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
        await c.post("/api/v1/learning/events", headers=me.h, json={"events": [_ev(enrolment, "lesson_started", s.lessons["text"])]})
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
        r = await c.post("/api/v1/learning/events", headers=b_learner.h, json={"events": [_ev(enrolment, "lesson_completed", s.lessons["text"])]})
        assert r.status_code == 404
        assert (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=b_learner.h)).status_code == 404
        assert (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=b_admin_h)).status_code == 404
        for h in (b_learner.h, b_admin_h):
            r = await c.get("/api/v1/xapi/statements", headers=h, params={"agent": me.id})
            assert r.status_code == 200 and r.json()["statements"] == []


async def _publish_raw(campus: Campus, subject: str, data: bytes, headers: dict[str, str] | None = None) -> int:
    nc = await nats_connect(campus)
    try:
        ack = await nc.jetstream().publish(subject, data, headers=headers)
        return int(ack.seq)
    finally:
        await nc.close()


async def test_undecodable_and_poison_messages_go_to_the_dead_letter_stream(shared_campus: Campus) -> None:
    conn = await asyncpg.connect(app_dsn(shared_campus))
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        campus_id = shared_campus_id(shared_campus)
        # an operator mistake the gradebook cannot get past: a check that full marks violate
        await conn.execute("ALTER TABLE grades ADD CONSTRAINT test_no_full_marks CHECK (best_score < 1.5) NOT VALID")
        qid = (await c.get(f"/api/v1/quizzes/{s.quiz_id}", headers=me.h)).json()["questions"][0]["id"]
        r = await c.post(f"/api/v1/quizzes/{s.quiz_id}/attempts", headers=me.h, json={"answers": {qid: 0}})
        assert r.status_code in (200, 201), r.text
        garbage_seq = await _publish_raw(shared_campus, f"lmsd.{campus_id}.enrolment.{enrolment}.lesson_started", b"\xff\x00 not protobuf")
        # decodable but impossible to apply: ids that are not UUIDs
        poison = envelope_pb2.Event(
            id=str(uuid.uuid4()), campus_id=campus_id, aggregate="enrolment", aggregate_id=enrolment, version=999,
            occurred_at_us=1, recorded_at_us=1, actor_id=me.id,
        )
        poison.lesson_started.CopyFrom(learning_pb2.LessonStarted(course_id="nope", lesson_id="nope"))
        poison_seq = await _publish_raw(shared_campus, f"lmsd.{campus_id}.enrolment.{enrolment}.lesson_started", poison.SerializeToString())
        # the consumers do not block: a good event after them is applied
        r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": [_ev(enrolment, "lesson_completed", s.lessons["text"])]})
        assert r.status_code == 202
        await wait_progress(c, me, enrolment, lambda p: p["lessons_completed"] == 1)

        letters: list[dict[str, Any]] = []
        for _ in range(120):
            out = shared_campus.lmsd("events", "dlq", "--json")
            assert out.returncode == 0, out.stderr
            letters = json.loads(out.stdout)
            by = {(d["consumer"], d["stream_seq"]) for d in letters}
            graded = [d for d in letters if d["subject"].endswith(f"{enrolment}.quiz_attempt_graded")]
            if {("learning", poison_seq), ("learning", garbage_seq)} <= by and graded:
                break
            await asyncio.sleep(1)
        garbage = [d for d in letters if d["stream_seq"] == garbage_seq]
        assert [d["consumer"] for d in garbage] == ["learning"]
        assert all("not a protobuf" in d["reason"] and d["deliveries"] == 1 for d in garbage)
        poisoned = [d for d in letters if d["stream_seq"] == poison_seq]
        assert [d["consumer"] for d in poisoned] == ["learning"]
        assert all(d["deliveries"] == 5 and "is not a UUID" in d["reason"] for d in poisoned), poisoned
        assert len(graded) == 1 and graded[0]["deliveries"] == 5 and "test_no_full_marks" in graded[0]["reason"], graded
        assert graded[0]["consumer"] == "learning"

        text = shared_campus.lmsd("events", "dlq").stdout
        assert "not a protobuf" in text and f"stream seq {garbage_seq}" in text
        assert "dead letters" in shared_campus.lmsd("status").stdout
        # replaying cannot fix these: kept, exit 1, one line on stderr
        out = shared_campus.lmsd("events", "dlq", "replay", str(garbage[0]["seq"]), str(poisoned[0]["seq"]))
        assert out.returncode == 1 and "still fail" in out.stderr, out.stdout + out.stderr
        assert "kept" in out.stdout
        # the cause of the gradebook's failure is fixed: replaying applies it and removes it
        still = shared_campus.lmsd("events", "dlq", "replay", str(graded[0]["seq"]))
        assert still.returncode == 1 and "test_no_full_marks" in still.stdout
        await conn.execute("ALTER TABLE grades DROP CONSTRAINT test_no_full_marks")
        out = shared_campus.lmsd("events", "dlq", "replay", str(graded[0]["seq"]))
        assert out.returncode == 0, out.stdout + out.stderr
        p = (await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=me.h)).json()
        assert p["grades"] == [{"quiz_id": s.quiz_id, "attempts": 1, "best_score": 2.0, "max_score": 2.0}]
    await conn.close()
    assert shared_campus.lmsd("events", "dlq", "replay", str(graded[0]["seq"])).returncode == 1  # gone now
    for d in garbage + poisoned:
        assert shared_campus.lmsd("events", "dlq", "drop", str(d["seq"])).returncode == 0
    bad = shared_campus.lmsd("events", "dlq", "drop", "999999")
    assert bad.returncode == 1 and "no dead letter" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def shared_campus_id(campus: Campus) -> str:
    import tomllib

    return str(tomllib.loads((campus.data_dir / "config.toml").read_text())["campus"]["id"])


async def test_replay_rebuilds_each_projection_equal_to_the_live_one_and_snapshots(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=3)
        for who, enrolment in zip(s.learners, s.enrolments, strict=True):
            events = [_ev(enrolment, "video_watched", s.lessons["video"], segments=[[i * 1000, i * 1000 + 1500]]) for i in range(50)]
            events += [_ev(enrolment, "lesson_completed", s.lessons["text"])]
            r = await c.post("/api/v1/learning/events", headers=who.h, json={"events": events})
            assert r.status_code == 202, r.text
        for who, enrolment in zip(s.learners, s.enrolments, strict=True):
            await wait_progress(c, who, enrolment, lambda p: p["events_applied"] == 52)
        # quiz attempts: the graded attempt completes the quiz lesson. The first learner completes
        # the course with it and tries again (no second course_completed); the second tries once.
        question = (await c.get(f"/api/v1/quizzes/{s.quiz_id}", headers=s.teacher.h)).json()["questions"][0]["id"]
        first, second = s.learners[0], s.learners[1]
        rest = [_ev(s.enrolments[0], "lesson_completed", s.lessons[k]) for k in ("text2", "video")]
        assert (await c.post("/api/v1/learning/events", headers=first.h, json={"events": rest})).status_code == 202
        for who, answers in ((first, {question: 0}), (first, {question: 1}), (second, {})):
            r = await c.post(f"/api/v1/quizzes/{s.quiz_id}/attempts", headers=who.h, json={"answers": answers})
            assert r.status_code in (200, 201), r.text
        p = await wait_progress(c, first, s.enrolments[0], lambda p: p["events_applied"] == 52 + 2 + 4 + 1)
        assert p["lessons_completed"] == 4 and p["completed_at"] is not None and p["quiz_attempts"] == 2
        p = await wait_progress(c, second, s.enrolments[1], lambda p: p["events_applied"] == 52 + 2)
        assert p["lessons_completed"] == 2 and p["completed_at"] is None
        assert any(x["lesson_id"] == s.lessons["quiz"] and x["completed_at"] for x in p["lessons"])
    conn = await asyncpg.connect(app_dsn(shared_campus))
    try:
        for _ in range(100):  # every consumer caught up with the whole stream (other tests' events too)
            out = json.loads(shared_campus.lmsd("events", "status", "--json").stdout)
            if out["relay"]["backlog"] == 0 and all(x["pending"] + x["unacknowledged"] == 0 for x in out["consumers"]):
                break
            await asyncio.sleep(0.3)
        for name in ("progress", "gradebook", "xapi", "learning"):
            first = shared_campus.lmsd("events", "replay", "--projection", name, "--from-start", "--json")
            assert first.returncode == 0, first.stdout + first.stderr
            report = json.loads(first.stdout)
            assert report["comparable"] and not any(report["differences"].values()), report
            assert report["events"] > 0 and report["snapshot_seq"] is None
            # the next replay starts from the snapshot: reads only what came after it
            again = shared_campus.lmsd("events", "replay", "--projection", name, "--json")
            assert again.returncode == 0, again.stdout + again.stderr
            second = json.loads(again.stdout)
            assert second["snapshot_seq"] == report["to_seq"] and second["events"] < report["events"]
            assert not any(second["differences"].values())
        rows = await conn.fetchval("SELECT count(*) FROM lmsd_replay.progress")
        assert rows == await conn.fetchval("SELECT count(*) FROM progress")
        # a replay that differs says so: damage the live table
        await conn.execute("UPDATE progress SET watched_ms = watched_ms + 1 WHERE enrolment_id = $1", uuid.UUID(s.enrolments[0]))
        bad = shared_campus.lmsd("events", "replay", "--projection", "progress")
        assert bad.returncode == 1 and "differs" in bad.stderr, bad.stdout + bad.stderr
        await conn.execute("UPDATE progress SET watched_ms = watched_ms - 1 WHERE enrolment_id = $1", uuid.UUID(s.enrolments[0]))
    finally:
        await conn.close()
    out = shared_campus.lmsd("events", "replay", "--projection", "nope")
    assert out.returncode == 1 and "no projection" in out.stderr


async def test_stream_holds_each_event_once_with_its_id_and_order(shared_campus: Campus) -> None:
    async with client(shared_campus) as c:
        s = await setup(c, learners=1)
        me, enrolment = s.learners[0], s.enrolments[0]
        for _ in range(3):
            batch = [_ev(enrolment, "lesson_started", s.lessons["text"]) for _ in range(40)]
            assert (await c.post("/api/v1/learning/events", headers=me.h, json={"events": batch})).status_code == 202
        await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == 121)
    versions = []
    batches: dict[str, list[int]] = {}
    for m in await _aggregate_messages(shared_campus, enrolment):
        ev = envelope_pb2.Event()
        ev.ParseFromString(m.data)
        assert m.headers and m.headers["Nats-Msg-Id"] == ev.id
        assert m.subject.endswith("." + ev.WhichOneof("body"))
        versions.append(ev.version)
        if "Nats-Batch-Id" in m.headers:
            batches.setdefault(m.headers["Nats-Batch-Id"], []).append(m.metadata.sequence.stream)
    assert versions == list(range(1, 122))  # each once, in the aggregate's order
    # the relay sent each request's 40 events as atomic batches, each stored contiguously
    assert sum(map(len, batches.values())) >= 80, batches
    assert all(seqs == list(range(seqs[0], seqs[0] + len(seqs))) for seqs in batches.values())
    nc = await nats_connect(shared_campus)
    try:
        assert (await nc.jetstream().stream_info("LMSD_EVENTS")).config.allow_atomic is True
    finally:
        await nc.close()


class _Counter:
    """A projection with a read-modify-write in Python: events counted per aggregate."""

    name: str = "lock-test"
    tables: tuple[str, ...] = ("lock_test_counts",)

    async def apply(self, conn: asyncpg.Connection, events: list[Any], *, live: bool) -> list[Any]:
        for aggregate in {d.event.aggregate_id for d in events}:
            seen = await conn.fetchval("SELECT n FROM lock_test_counts WHERE id = $1", aggregate) or 0
            mine = sum(1 for d in events if d.event.aggregate_id == aggregate)
            await conn.execute(
                "INSERT INTO lock_test_counts VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = excluded.n",
                aggregate, seen + mine,
            )
        return []


async def test_batches_of_one_aggregate_apply_one_after_the_other(shared_campus: Campus) -> None:
    """Concurrent batches of one aggregate (several pulls, several workers) serialise on the
    aggregate's advisory lock, so a projection's read-modify-write is never lost."""
    from lmsd.events.consumers import Delivered, apply_batch, lock_keys

    campus_id, aggregate = shared_campus_id(shared_campus), str(uuid.uuid4())

    def event() -> Delivered:
        ev = envelope_pb2.Event(id=str(uuid.uuid4()), campus_id=campus_id, aggregate="enrolment", aggregate_id=aggregate)
        ev.lesson_started.CopyFrom(learning_pb2.LessonStarted(course_id=str(uuid.uuid4()), lesson_id=str(uuid.uuid4())))
        return Delivered(ev, 0)

    holder, other = await asyncpg.connect(app_dsn(shared_campus)), await asyncpg.connect(app_dsn(shared_campus))
    try:
        await holder.execute("CREATE TABLE IF NOT EXISTS lock_test_counts (id uuid PRIMARY KEY, n int)")
        counter = _Counter()
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", lock_keys(counter.name, {aggregate}))
        second = asyncio.create_task(apply_batch(other, counter, [event(), event()]))
        await asyncio.sleep(0.5)
        assert not second.done()  # waits for the transaction holding the aggregate
        assert await apply_batch(holder, counter, [event()]) == 1  # the holder applies meanwhile
        await tx.commit()
        assert await asyncio.wait_for(second, 10) == 2
        # it read the count after the holder's commit: 1 + 2, nothing overwritten
        assert await holder.fetchval("SELECT n FROM lock_test_counts WHERE id = $1", uuid.UUID(aggregate)) == 3
    finally:
        await holder.execute("DROP TABLE IF EXISTS lock_test_counts")
        await holder.close()
        await other.close()


async def _published(conn: asyncpg.Connection, enrolment: str, timeout: float = 30) -> asyncpg.Record:
    """Wait until the relay has published every event of the enrolment; its aggregate row."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await conn.fetchrow(
            "SELECT version, published_version, published_seq, attempts, last_error FROM event_aggregates "
            "WHERE aggregate = 'enrolment' AND aggregate_id = $1", uuid.UUID(enrolment),
        )
        if row is not None and row["published_version"] == row["version"]:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"not published in {timeout}s: {row}"
        await asyncio.sleep(0.2)


async def _aggregate_messages(campus: Campus, enrolment: str) -> list[Msg]:
    """Every message on the enrolment's subjects, in stream order."""
    nc = await nats_connect(campus)
    try:
        sub = await nc.jetstream().pull_subscribe(
            f"lmsd.{shared_campus_id(campus)}.enrolment.{enrolment}.*", durable=None, stream="LMSD_EVENTS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        return await sub.fetch(1000, timeout=3)
    finally:
        await nc.close()


async def _stream_versions(campus: Campus, enrolment: str) -> list[int]:
    """The version of every message on the enrolment's subjects, in stream order (-1: not an event)."""
    versions = []
    for m in await _aggregate_messages(campus, enrolment):
        ev = envelope_pb2.Event()
        try:
            ev.ParseFromString(m.data)
        except DecodeError:
            versions.append(-1)
            continue
        versions.append(ev.version)
    return versions


async def test_the_relay_recovers_lost_markings_and_foreign_messages_without_duplicates(shared_campus: Campus) -> None:
    """Batches published and then forgotten (the relay died before marking them) are recognised
    as the stream's own and marked, not published again; a foreign message on the aggregate's
    subjects is stepped over, and our next batch follows it."""
    conn = await asyncpg.connect(app_dsn(shared_campus))
    try:
        async with client(shared_campus) as c:
            s = await setup(c, learners=1)
            me, enrolment = s.learners[0], s.enrolments[0]

            async def record(n: int) -> None:
                batch = [_ev(enrolment, "lesson_started", s.lessons["text"]) for _ in range(n)]
                r = await c.post("/api/v1/learning/events", headers=me.h, json={"events": batch})
                assert r.status_code == 202, r.text

            await record(10)
            before = await _published(conn, enrolment)
            await record(20)
            after = await _published(conn, enrolment)
            assert after["version"] == before["version"] + 20
            # the relay "forgets" the second batch: its aggregate back where it was before it
            await conn.execute(
                "UPDATE event_aggregates SET published_version = $2, published_seq = $3 WHERE aggregate_id = $1",
                uuid.UUID(enrolment), before["published_version"], before["published_seq"],
            )
            recovered = await _published(conn, enrolment)
            assert (recovered["published_version"], recovered["published_seq"]) == (after["version"], after["published_seq"])
            # refused (within the duplicate window for the repeated ids, after it for the moved
            # sequence), then recognised as already stored
            assert recovered["attempts"] >= 1, recovered
            reason = recovered["last_error"]
            assert "duplicate message id" in reason or "wrong last sequence" in reason, recovered
            versions = await _stream_versions(shared_campus, enrolment)
            assert versions == list(range(1, after["version"] + 1))  # nothing published twice

            # a foreign message on the aggregate's subjects: our events continue after it
            await _publish_raw(shared_campus, f"lmsd.{shared_campus_id(shared_campus)}.enrolment.{enrolment}.lesson_started", b"\x00 foreign")
            await record(5)
            last = await _published(conn, enrolment)
            assert last["version"] == after["version"] + 5
            versions = await _stream_versions(shared_campus, enrolment)
            assert versions == [*range(1, after["version"] + 1), -1, *range(after["version"] + 1, last["version"] + 1)]
            await wait_progress(c, me, enrolment, lambda p: p["events_applied"] == last["version"])
    finally:
        await conn.close()
