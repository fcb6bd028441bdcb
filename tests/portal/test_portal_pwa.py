"""The installable portal, in-process on the real database: the manifest, the service worker's
headers and configuration, the offline page, and the queue of lessons completed offline
(``POST /offline/progress``): recorded once however often it is sent, at the time the learner
completed the lesson, refused whole (nothing recorded) when any event is bad."""

from __future__ import annotations

import json
import re
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from lmsd.events.connection import pg_connect
from lmsd.events.envelope import decode
from tests.api import PASSWORD, Person, admin, client, course, login, person, text_lessons
from tests.db import Database

ORIGIN = {"origin": "http://a.example"}


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found, "no csrf-token meta in the page"
    return found.group(1)


async def _sign_in(c: Any, who: Person) -> str:
    """The portal session of ``who`` in the client's cookies; returns the page's CSRF token."""
    r = await c.post("/login", data={"email": who.email, "password": PASSWORD}, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303, r.text
    token = _csrf((await c.get("/offline")).text)
    assert token
    return token


async def _course_with_lessons(c: Any, teacher: Person, learner: Person | None) -> tuple[str, list[str]]:
    crs = await course(c, teacher)
    lessons = await text_lessons(c, teacher, crs["id"])
    if learner is not None:
        r = await c.post(f"/api/v1/courses/{crs['id']}/enrol", headers=learner.h)
        assert r.status_code == 201, r.text
    return crs["id"], lessons


async def _events(db: Database, ids: list[str]) -> list[Any]:
    """The outbox's events with these ids (in-process nothing publishes or prunes them)."""
    conn = await pg_connect(db.settings, db.secrets)
    try:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids])
    finally:
        await conn.close()
    return [decode(r["payload"]) for r in rows]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_manifest_worker_and_offline_page(database: Database) -> None:
    async with client(database) as c:
        r = await c.get("/manifest.webmanifest", headers={"accept-language": "fr"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/manifest+json")
        m = r.json()
        assert m["name"] == m["short_name"] == database.settings.campus.name
        assert (m["start_url"], m["scope"], m["display"], m["lang"]) == ("/my", "/", "standalone", "fr")
        assert m["theme_color"] == "#1d4f91" and m["background_color"]
        purposes: dict[str, set[str]] = {}
        for icon in m["icons"]:
            image = await c.get(icon["src"])
            assert image.status_code == 200 and image.headers["content-type"] == "image/png", icon
            w, h = _png_size(image.content)
            assert f"{w}x{h}" == icon["sizes"] and w == h, icon
            purposes.setdefault(icon["purpose"], set()).add(icon["sizes"])
        assert {"192x192", "512x512"} <= purposes["any"] and "512x512" in purposes["maskable"]

        r = await c.get("/sw.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert r.headers["service-worker-allowed"] == "/" and r.headers["cache-control"] == "no-cache"
        config = json.loads(r.text.split("\n", 1)[0].removeprefix("const CONFIG = ").removesuffix(";"))
        assert re.fullmatch(r"[0-9a-f]{16}", config["version"]) and config["offline"] == "/offline"
        assert "addEventListener(\"fetch\"" in r.text and "lmsd-static-${CONFIG.version}" in r.text
        for url in config["precache"]:  # a missing file would fail the worker's installation
            assert (await c.get(url)).status_code == 200, url
        assert any("/static/min/portal.js?v=" in u for u in config["precache"])
        assert (await c.get("/sw.js")).text == r.text  # stable: the browser sees no false update

        # the offline page: for anyone, in their language
        r = await c.get("/offline", headers={"accept-language": "es"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "<h1>Lectura sin conexión</h1>" in r.text and r.headers["content-language"] == "es"
        assert "data-saved-lessons" in r.text and "script-src 'self'" in r.headers["content-security-policy"]
        strings = (await c.get("/offline/messages.json?lang=fr")).json()
        assert strings["offline"].startswith("Vous êtes hors ligne") and strings["queued"]
        assert (await c.get("/offline/messages.json?lang=zz")).json()["remove"] == "Remove from offline"

        # signed in, the page is the learner's; the worker's copy (precache) holds no session token
        root = await admin(c, database)
        learner = await person(c, root, "learner")
        token = await _sign_in(c, learner)
        r = await c.get("/offline")
        assert _csrf(r.text) == token and 'action="/logout"' in r.text
        r = await c.get("/offline", headers={"x-lmsd-precache": "1"})
        assert r.status_code == 200 and _csrf(r.text) == "" and 'action="/logout"' not in r.text


async def test_offline_progress_recorded_once_with_its_time(database: Database) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        teacher = await person(c, root, "instructor")
        learner = await person(c, root, "learner")
        _, (lesson, lesson2) = await _course_with_lessons(c, teacher, learner)
        _, (not_mine, _x) = await _course_with_lessons(c, teacher, None)
        token = await _sign_in(c, learner)
        h = {**ORIGIN, "x-csrf-token": token}
        when = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
        one = {"id": str(uuid.uuid4()), "lesson_id": lesson, "type": "lesson_completed", "occurred_at": when.isoformat()}
        two = {**one, "id": str(uuid.uuid4()), "lesson_id": lesson2, "occurred_at": (when + timedelta(minutes=5)).isoformat()}

        r = await c.post("/offline/progress", json={"events": [one, two]}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 2, "duplicates": 0}
        # the answer was lost on the way: the browser sends the same queue again
        r = await c.post("/offline/progress", json={"events": [one, two]}, headers=h)
        assert r.status_code == 200 and r.json() == {"accepted": 0, "duplicates": 2}
        events = await _events(database, [one["id"], two["id"]])
        assert sorted(e.id for e in events) == sorted([one["id"], two["id"]])
        first = next(e for e in events if e.id == one["id"])
        assert first.WhichOneof("body") == "lesson_completed" and first.lesson_completed.lesson_id == lesson
        assert first.occurred_at_us == int(when.timestamp() * 1_000_000)  # the offline time, not now
        assert first.recorded_at_us > first.occurred_at_us and first.actor_id == learner.id

        # the relay prunes published events from the outbox: the id is still known
        conn = await pg_connect(database.settings, database.secrets)
        try:
            await conn.execute("DELETE FROM outbox WHERE id = $1", uuid.UUID(one["id"]))
        finally:
            await conn.close()
        r = await c.post("/offline/progress", json={"events": [one]}, headers=h)
        assert r.status_code == 200 and r.json() == {"accepted": 0, "duplicates": 1}
        assert await _events(database, [one["id"]]) == []

        # the JSON API takes the client's id too, and so skips an event the portal recorded
        enrolment = first.aggregate_id
        api_event = {"enrolment_id": enrolment, "type": "lesson_completed", "lesson_id": lesson2, "id": two["id"]}
        r = await c.post("/api/v1/learning/events", json={"events": [api_event]}, headers=learner.h)
        assert r.status_code == 202 and r.json()["accepted"] == 0 and r.json()["duplicates"] == 1
        fresh = {**api_event, "id": str(uuid.uuid4())}
        r = await c.post("/api/v1/learning/events", json={"events": [fresh, fresh]}, headers=learner.h)
        assert r.status_code == 202 and (r.json()["accepted"], r.json()["duplicates"]) == (1, 1)
        assert len(await _events(database, [fresh["id"]])) == 1


async def test_offline_progress_refuses_bad_input_whole(database: Database) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        teacher = await person(c, root, "instructor")
        learner = await person(c, root, "learner")
        _, (lesson, _l2) = await _course_with_lessons(c, teacher, learner)
        _, (not_enrolled, _l3) = await _course_with_lessons(c, teacher, None)
        # another campus's lesson
        host = f"b-{uuid.uuid4().hex[:6]}.example"
        r = await c.post("/api/v1/campuses", headers=root.h, json={"name": "Campus B", "host": host, "admin_email": f"admin@{host}", "admin_password": PASSWORD})
        assert r.status_code == 201, r.text
        b_id = r.json()["id"]
        tok = await login(c, f"admin@{host}", PASSWORD, b_id)
        b_admin = Person("", f"admin@{host}", tok["access_token"], "admin")
        b_teacher = await person(c, b_admin, "instructor", b_id)
        _, (b_lesson, _l4) = await _course_with_lessons(c, b_teacher, None)

        now = datetime.now(UTC).isoformat()

        def ev(lesson_id: str, **extra: Any) -> dict[str, Any]:
            return {"id": str(uuid.uuid4()), "lesson_id": lesson_id, "type": "lesson_completed", "occurred_at": now, **extra}

        good = ev(lesson)
        # no session: 401 problem, not the sign-in page
        r = await c.post("/offline/progress", json={"events": [good]}, headers=ORIGIN)
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        token = await _sign_in(c, learner)
        h = {**ORIGIN, "x-csrf-token": token}
        # CSRF: no header, a forged one, another site
        for headers in (ORIGIN, {**ORIGIN, "x-csrf-token": "forged"}, {"origin": "http://evil.example", "x-csrf-token": token}):
            r = await c.post("/offline/progress", json={"events": [good]}, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json"), r.text

        cases: list[tuple[Any, int, str | None]] = []
        bad_not_enrolled = ev(not_enrolled)
        cases.append(({"events": [good, bad_not_enrolled]}, 404, bad_not_enrolled["id"]))
        bad_campus = ev(b_lesson)
        cases.append(({"events": [good, bad_campus]}, 404, bad_campus["id"]))
        bad_nowhere = ev(str(uuid.uuid4()))
        cases.append(({"events": [good, bad_nowhere]}, 404, bad_nowhere["id"]))
        bad_type = ev(lesson, type="lesson_deleted")
        cases.append(({"events": [good, bad_type]}, 422, bad_type["id"]))
        bad_time = ev(lesson, occurred_at="yesterday")
        cases.append(({"events": [good, bad_time]}, 422, bad_time["id"]))
        future = ev(lesson, occurred_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
        cases.append(({"events": [good, future]}, 422, future["id"]))
        naive = ev(lesson, occurred_at="2026-01-01T10:00:00")
        cases.append(({"events": [good, naive]}, 422, naive["id"]))
        extra_field = ev(lesson, token="x")
        cases.append(({"events": [good, extra_field]}, 422, extra_field["id"]))
        bad_id = ev(lesson, id="not-a-uuid")
        cases.append(({"events": [good, bad_id]}, 422, "not-a-uuid"))
        cases.append(({"events": [good, {**good}]}, 422, good["id"]))  # the same id twice
        cases.append(({"events": [good] + [ev(lesson) for _ in range(100)]}, 422, None))
        cases.append(({"events": []}, 422, None))
        cases.append(({"events": [good], "more": 1}, 400, None))
        cases.append(([good], 400, None))
        for body, status, event_id in cases:
            r = await c.post("/offline/progress", json=body, headers=h)
            assert r.status_code == status, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json().get("event_id") == event_id, r.text
        r = await c.post("/offline/progress", content=b"{not json", headers={**h, "content-type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        # all or nothing: the good event of every refused batch was not recorded
        assert await _events(database, [good["id"]]) == []
        r = await c.post("/offline/progress", json={"events": [good]}, headers=h)
        assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0}
        # a withdrawn enrolment takes no more activity (the browser drops the event: event_id)
        enrolment = (await _events(database, [good["id"]]))[0].aggregate_id
        r = await c.patch(f"/api/v1/enrolments/{enrolment}", json={"status": "withdrawn"}, headers=learner.h)
        assert r.status_code == 200, r.text
        late = ev(lesson)
        r = await c.post("/offline/progress", json={"events": [late]}, headers=h)
        assert r.status_code == 404 and r.json()["event_id"] == late["id"]
        assert await _events(database, [late["id"]]) == []
