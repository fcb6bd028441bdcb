"""The learner's portal pages in-process on the real database: the catalog (search, filters,
pages), a course page, enrolment (CSRF), each kind of lesson, quizzes (right, wrong, no answer,
no attempts left), "Mark as complete" as a learning event, my courses, the profile (validation and
language), and what nobody may see: another campus's ids, lessons of a course one is not
enrolled in, pages without a session."""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from lmsd.events.connection import pg_connect
from tests.api import PASSWORD, Person, admin, client, course, login, person
from tests.db import Database
from tests.media import make_clip, uploaded_video

ORIGIN = {"origin": "http://a.example"}
TEXT = """# Vectors

A vector $v = (v_1, v_2)$ has a length:

$$
\\lVert v \\rVert = \\sqrt{v_1^2 + v_2^2}
$$

```python
def norm(v):
    return sum(x * x for x in v) ** 0.5
```

<script>alert("x")</script> [bad](javascript:alert(1))
"""


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found and found.group(1), "no csrf-token meta in the page"
    return found.group(1)


async def _sign_in(c: AsyncTestClient, who: Person) -> str:  # type: ignore[type-arg]
    """Sign in to the portal with the form; returns the session's CSRF token."""
    r = await c.post("/login", data={"email": who.email, "password": PASSWORD}, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf((await c.get("/profile")).text)


@dataclass
class Made:
    teacher: Person
    course: dict[str, Any]
    module: str
    lessons: dict[str, str]  # text, video, quiz
    quiz: dict[str, Any]


async def _course(c: AsyncTestClient, database: Database, root: Person, *, title: str, language: str = "fr",  # type: ignore[type-arg]
                  tags: list[str] | None = None) -> Made:
    teacher = await person(c, root, "instructor")
    r = await c.post("/api/v1/courses", headers=teacher.h, json={
        "code": f"C{uuid.uuid4().hex[:8]}", "title": title, "summary": "Vectors, matrices and more.",
        "language": language, "tags": tags or ["maths"], "self_enrol": True,
    })
    assert r.status_code == 201, r.text
    crs = r.json()
    module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "Week 1"})).json()
    quiz = (await c.post(f"/api/v1/courses/{crs['id']}/quizzes", headers=teacher.h, json={
        "title": "Check", "max_attempts": 2, "questions": [
            {"kind": "single", "prompt": "2+2?", "options": ["4", "5"], "answer": 0, "points": 2},
            {"kind": "numeric", "prompt": "Half of 9?", "answer": {"value": 4.5}, "points": 1},
        ]})).json()
    video = await uploaded_video(c, teacher.h, crs["id"], make_clip(Path(tempfile.gettempdir()) / "lmsd-test-clip.mp4"))  # type: ignore[arg-type]
    lessons = {}
    for key, body in (
        ("text", {"title": "Vectors", "body": TEXT}),
        ("video", {"title": "Lecture", "kind": "video", "video_id": video}),
        ("quiz", {"title": "Quiz", "kind": "quiz", "quiz_id": quiz["id"]}),
    ):
        r = await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json=body)
        assert r.status_code == 201, r.text
        lessons[key] = r.json()["id"]
    r = await c.get(f"/api/v1/courses/{crs['id']}", headers=teacher.h)
    r = await c.patch(f"/api/v1/courses/{crs['id']}", headers={**teacher.h, "if-match": r.headers["etag"]}, json={"status": "published"})
    assert r.status_code == 200, r.text
    return Made(teacher, r.json(), module["id"], lessons, quiz)


async def _outbox_subjects(database: Database, aggregate: str) -> list[str]:
    conn = await pg_connect(database.settings, database.secrets)
    try:
        rows = await conn.fetch("SELECT subject FROM outbox WHERE aggregate_id = $1 ORDER BY seq", uuid.UUID(aggregate))
        return [r["subject"] for r in rows]
    finally:
        await conn.close()


async def _enrolment(c: AsyncTestClient, who: Person, course_id: str) -> str | None:  # type: ignore[type-arg]
    r = await c.get("/api/v1/me/courses", headers=who.h)
    assert r.status_code == 200, r.text
    ids = [x["id"] for x in r.json().get("enrolled", [])]
    return course_id if course_id in ids else None


async def test_catalog_course_enrolment_and_lessons(database: Database) -> None:
    run = uuid.uuid4().hex[:6]
    async with client(database) as api:
        root = await admin(api, database)
        made = await _course(api, database, root, title=f"Algebra {run}", language="fr", tags=[f"maths-{run}"])
        other = await _course(api, database, root, title=f"History {run}", language="en", tags=[f"past-{run}"])
        learner = await person(api, root, "learner")
        outsider = await person(api, root, "learner")
        # 13 more courses with one topic: a catalog page holds 12
        closed = (await course(api, made.teacher, self_enrol=False))["id"]
        for n in range(13):
            r = await api.post("/api/v1/courses", headers=made.teacher.h, json={
                "code": f"P{uuid.uuid4().hex[:8]}", "title": f"Paged course {n:02d}", "tags": [f"paged-{run}"]})
            cid, etag = r.json()["id"], r.headers["etag"]
            r = await api.patch(f"/api/v1/courses/{cid}", headers={**made.teacher.h, "if-match": etag}, json={"status": "published"})
            assert r.status_code == 200, r.text
    cid, lessons = made.course["id"], made.lessons
    async with client(database) as c:
        # not signed in: every learner page goes to the sign-in form and back
        for path in ("/catalog", f"/courses/{cid}", f"/lessons/{lessons['text']}", "/my", "/profile"):
            r = await c.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}", path
        r = await c.get("/catalog?q=x", follow_redirects=False)
        assert r.headers["location"] == "/login?next=/catalog%3Fq%3Dx"
        token = await _sign_in(c, learner)
        # catalog: search, filters, pages
        r = await c.get(f"/catalog?q={run}")
        assert r.status_code == 200 and f"Algebra {run}" in r.text and f"History {run}" in r.text
        assert f'href="/courses/{cid}"' in r.text and 'role="search"' in r.text
        r = await c.get(f"/catalog?q=algebra+{run}")
        assert f"Algebra {run}" in r.text and f"History {run}" not in r.text
        r = await c.get(f"/catalog?q={run}&language=en")
        assert f"History {run}" in r.text and f"Algebra {run}" not in r.text
        r = await c.get(f"/catalog?tag=maths-{run}")
        assert f"Algebra {run}" in r.text and f"History {run}" not in r.text and f'<option value="maths-{run}" selected>' in r.text
        r = await c.get(f"/catalog?q=nothing-like-this-{run}")
        assert r.status_code == 200 and "No course matches your search." in r.text
        r = await c.get(f"/catalog?tag=paged-{run}")
        assert r.text.count('class="card course-card"') == 12
        next_url = re.search(r'<a href="([^"]+)" rel="next">', r.text)
        assert next_url, "no next page link"
        r = await c.get(next_url.group(1).replace("&amp;", "&"))
        assert r.status_code == 200 and r.text.count('class="card course-card"') == 1 and 'rel="next"' not in r.text
        r = await c.get("/catalog?cursor=not-a-cursor")
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        # the course page before enrolling: the outline without links, and an Enrol button
        r = await c.get(f"/courses/{cid}")
        assert r.status_code == 200 and "<h1>Algebra" in r.text and "French" in r.text and made.teacher.email[:12] in r.text
        assert f'action="/courses/{cid}/enrol"' in r.text and f'href="/lessons/{lessons["text"]}"' not in r.text
        assert "Vectors" in r.text and "(Video)" in r.text and "(Quiz)" in r.text
        # lessons are not open before enrolling
        assert (await c.get(f"/lessons/{lessons['text']}")).status_code == 403
        # enrolling without the page's token records nothing
        r = await c.post(f"/courses/{cid}/enrol", data={}, headers=ORIGIN)
        assert r.status_code == 403 and "Not allowed" in r.text
        assert await _enrolment(c, learner, cid) is None
        r = await c.post(f"/courses/{cid}/enrol", data={"csrf_token": token}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and await _enrolment(c, learner, cid) is None
        r = await c.post(f"/courses/{cid}/enrol", data={"csrf_token": token}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/courses/{cid}?notice=enrolled"
        assert await _enrolment(c, learner, cid) == cid
        r = await c.get(r.headers["location"])
        assert "You are enrolled" in r.text and "<progress" in r.text and "0%" in r.text
        assert f'href="/lessons/{lessons["text"]}"' in r.text and "Start the course" in r.text
        assert f'action="/courses/{cid}/enrol"' not in r.text
        r = await c.post(f"/courses/{cid}/enrol", data={"csrf_token": token}, headers=ORIGIN, follow_redirects=False)
        assert r.headers["location"] == f"/courses/{cid}?notice=already"
        # a course closed to self-enrolment: no button, and a forged POST is refused with a page
        r = await c.get(f"/courses/{closed}")
        assert "not open for self-enrolment" in r.text and "/enrol" not in r.text
        r = await c.post(f"/courses/{closed}/enrol", data={"csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 409 and "not open for self-enrolment" in r.text
        # the text lesson: Markdown with code and maths, safe
        r = await c.get(f"/lessons/{lessons['text']}")
        assert r.status_code == 200
        html = r.text
        assert "<h1>Vectors</h1>" in html and "<h2>Vectors</h2>" in html  # the body's headings sit below the page's
        assert '<pre class="highlight"><code class="language-python"><span class="k">def</span>' in html
        assert html.count("<math") == 2 and 'display="block"' in html and "style=" not in html
        assert "<script>alert" not in html and "&lt;script&gt;" in html and 'href="javascript:' not in html
        assert f'<form class="complete-lesson" method="post" action="/lessons/{lessons["text"]}/complete" data-lesson-id="{lessons["text"]}">' in html
        assert f'<button type="button" class="save-offline" data-lesson-url="/lessons/{lessons["text"]}" hidden>Save for offline reading</button>' in html
        assert 'aria-label="Breadcrumb"' in html and f'href="/courses/{cid}"' in html and "Week 1" in html
        assert f'href="/lessons/{lessons["video"]}" rel="next"' in html and 'rel="prev"' not in html
        enrolment = await _my_enrolment_id(database, learner, cid)
        assert any(s.endswith(".lesson_started") for s in await _outbox_subjects(database, enrolment))
        # mark as complete: a token is needed; then a lesson_completed event, and on to the next lesson
        r = await c.post(f"/lessons/{lessons['text']}/complete", data={}, headers=ORIGIN)
        assert r.status_code == 403
        assert not any(s.endswith(".lesson_completed") for s in await _outbox_subjects(database, enrolment))
        r = await c.post(f"/lessons/{lessons['text']}/complete", data={"csrf_token": token}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/lessons/{lessons['video']}?notice=completed"
        subjects = await _outbox_subjects(database, enrolment)
        assert [s for s in subjects if s.endswith(".lesson_completed")], subjects
        # the video lesson: still being transcoded here (no transcoder in-process), inside the layout
        r = await c.get(r.headers["location"])
        assert r.status_code == 200 and "Lesson marked as complete." in r.text
        assert 'class="lmsd-transcoding"' in r.text and f'data-status-url="/watch/{lessons["video"]}/status"' in r.text
        assert "media-src 'self' blob:" in r.headers["content-security-policy"] and "unsafe-inline" not in r.headers["content-security-policy"]
        assert r.text.count("<h1") == 1 and 'class="site-header"' in r.text and 'class="complete-lesson"' in r.text
        # ... and once ready, the player with captions on
        await _make_ready(database, await _video_of(database, lessons["video"]))
        r = await c.get(f"/lessons/{lessons['video']}")
        assert '<video class="lmsd-player"' in r.text and 'data-captions="on"' in r.text
        assert f'data-progress-url="/watch/{lessons["video"]}/progress"' in r.text and "/api/v1/media/videos/" in r.text
        # the quiz lesson: a form with the questions
        r = await c.get(f"/lessons/{lessons['quiz']}")
        assert r.status_code == 200 and 'class="quiz-form"' in r.text and "2+2?" in r.text and 'type="radio"' in r.text
        assert "You have 2 attempts left." in r.text and 'class="save-offline"' in r.text
        # another learner of the campus, not enrolled: the course page yes, its lessons no
        async with client(database) as c2:
            await _sign_in(c2, outsider)
            assert (await c2.get(f"/courses/{cid}")).status_code == 200
            for kind in ("text", "video", "quiz"):
                r = await c2.get(f"/lessons/{lessons[kind]}")
                assert r.status_code == 403 and "Not allowed" in r.text and "Vectors, matrices" not in r.text
        # the other course's instructor may not see this draft-free course's lessons either
        r = await c.get(f"/courses/{other.course['id']}")
        assert r.status_code == 200 and f"History {run}" in r.text
        # ids that are not there, or of another campus: the 404 page
        b_course, b_lesson = await _other_campus(database)
        for path in (f"/courses/{b_course}", f"/lessons/{b_lesson}", f"/courses/{uuid.uuid4()}", f"/lessons/{uuid.uuid4()}"):
            r = await c.get(path)
            assert r.status_code == 404 and "Page not found" in r.text and "Campus B secret" not in r.text, path
        r = await c.post(f"/courses/{b_course}/enrol", data={"csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 404


async def _my_enrolment_id(database: Database, who: Person, course_id: str) -> str:
    conn = await pg_connect(database.settings, database.secrets)
    try:
        found = await conn.fetchval(
            "SELECT id FROM enrolments WHERE user_id = $1 AND course_id = $2", uuid.UUID(who.id), uuid.UUID(course_id)
        )
        assert found is not None
        return str(found)
    finally:
        await conn.close()


async def _video_of(database: Database, lesson: str) -> str:
    conn = await pg_connect(database.settings, database.secrets)
    try:
        return str(await conn.fetchval("SELECT video_id FROM lessons WHERE id = $1", uuid.UUID(lesson)))
    finally:
        await conn.close()


async def _make_ready(database: Database, video_id: str) -> None:
    """What the media projection writes when the transcoder reports a finished ladder."""
    renditions = [{"name": "240p", "width": 426, "height": 240, "bandwidth": 600000, "average_bandwidth": 500000,
                   "codecs": "avc1.64001e", "playlist": "240p/index.m3u8", "remuxed": False}]
    audio = {"name": "audio", "width": 0, "height": 0, "bandwidth": 140000, "average_bandwidth": 130000,
             "codecs": "mp4a.40.2", "playlist": "audio/index.m3u8", "remuxed": False}
    conn = await pg_connect(database.settings, database.secrets)
    try:
        await conn.execute(
            "UPDATE videos SET status = 'ready', progress = 100, renditions = $1, audio = $2, "
            "poster = 'poster.jpg', sprite_vtt = 'sprite.vtt' WHERE id = $3",
            renditions, audio, uuid.UUID(video_id),
        )
    finally:
        await conn.close()


async def _other_campus(database: Database) -> tuple[str, str]:
    """Campus B with a published course and a lesson; their ids."""
    async with client(database) as c:
        root = await admin(c, database)
        host = f"b-{uuid.uuid4().hex[:6]}.example"
        email = f"admin-{uuid.uuid4().hex[:6]}@b.example"
        r = await c.post("/api/v1/campuses", headers=root.h, json={"name": "Campus B", "host": host, "admin_email": email, "admin_password": PASSWORD})
        assert r.status_code == 201, r.text
        b_id = r.json()["id"]
        tok = await login(c, email, PASSWORD, b_id)
        me = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {tok['access_token']}"})).json()
        b_admin = Person(me["id"], me["email"], tok["access_token"], "admin")
        teacher = await person(c, b_admin, "instructor", b_id)
        crs = await course(c, teacher)
        module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "M"})).json()
        lesson = (await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json={"title": "L", "body": "Campus B secret"})).json()
        return crs["id"], lesson["id"]


async def test_quiz_right_wrong_and_bad_input(database: Database) -> None:
    async with client(database) as api:
        root = await admin(api, database)
        made = await _course(api, database, root, title="Quiz course")
        learner = await person(api, root, "learner")
        r = await api.post(f"/api/v1/courses/{made.course['id']}/enrol", headers=learner.h)
        assert r.status_code == 201
        enrolment = r.json()["id"]
    questions = [q["id"] for q in made.quiz["questions"]]
    single, numeric = (f"q-{q}" for q in questions)
    lesson = made.lessons["quiz"]
    async with client(database) as c:
        token = await _sign_in(c, learner)
        # no answer at all: a message per question, status 422, nothing recorded
        r = await c.post(f"/lessons/{lesson}/quiz", data={"csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 422 and 'class="error-summary"' in r.text
        assert "Question 1: choose an answer." in r.text and "Question 2: enter an answer." in r.text
        assert f'id="e-{single}"' in r.text and 'aria-invalid="true"' in r.text
        # an answer that is not a number, and an option that does not exist; what was typed stays
        r = await c.post(f"/lessons/{lesson}/quiz", data={"csrf_token": token, single: "7", numeric: "four and a half"}, headers=ORIGIN)
        assert r.status_code == 422 and "Question 2: enter a number, such as 2.5." in r.text
        assert "Question 1: choose one of the options." in r.text and 'value="four and a half"' in r.text
        # without the page's token: refused
        r = await c.post(f"/lessons/{lesson}/quiz", data={single: "0", numeric: "4.5"}, headers=ORIGIN)
        assert r.status_code == 403
        assert await _attempts(database, learner) == 0
        # a wrong answer and a right one (decimal comma, as the French write it)
        r = await c.post(f"/lessons/{lesson}/quiz", data={"csrf_token": token, single: "1", numeric: "4,5"}, headers=ORIGIN)
        assert r.status_code == 200, r.text
        html = r.text
        assert "<h1>Results: Quiz</h1>" in html and "1 out of 3 points" in html
        assert html.count('class="feedback is-wrong"') == 1 and html.count('class="feedback is-right"') == 1
        assert "Your answer:" in html and "1 attempt left" in html and f'href="/lessons/{lesson}"' in html
        assert "Incorrect" in html and "Correct" in html
        # the page records only the quiz's own events, as the API does: the projection completes
        # the lesson from the graded attempt (tests/learning/test_quiz_completion.py)
        subjects = await _outbox_subjects(database, enrolment)
        assert any(s.endswith(".quiz_attempt_graded") for s in subjects)
        assert not any(s.endswith(".lesson_completed") for s in subjects)
        r = await c.post(f"/lessons/{lesson}/quiz", data={"csrf_token": token, single: "0", numeric: "4.5"}, headers=ORIGIN)
        assert r.status_code == 200 and "3 out of 3 points" in r.text and "is-wrong" not in r.text
        assert "0 attempts left" in r.text and "Try again" not in r.text
        # no attempts left: the page says so, status 409, nothing recorded
        r = await c.get(f"/lessons/{lesson}")
        assert "You have no attempts left for this quiz." in r.text and "Submit answers" not in r.text
        r = await c.post(f"/lessons/{lesson}/quiz", data={"csrf_token": token, single: "0", numeric: "4.5"}, headers=ORIGIN)
        assert r.status_code == 409 and "You have used every attempt" in r.text
        assert await _attempts(database, learner) == 2
        # the course's instructor previews the quiz but cannot submit it
    async with client(database) as c:
        token = await _sign_in(c, made.teacher)
        r = await c.get(f"/lessons/{lesson}")
        assert r.status_code == 200 and "previewing this quiz" in r.text and "Submit answers" not in r.text
        r = await c.post(f"/lessons/{lesson}/quiz", data={"csrf_token": token, single: "0", numeric: "4.5"}, headers=ORIGIN)
        assert r.status_code == 403
        # staff reading a text lesson: no completion form, nothing recorded
        r = await c.get(f"/lessons/{made.lessons['text']}")
        assert r.status_code == 200 and 'class="complete-lesson"' not in r.text and "as staff" in r.text
        r = await c.post(f"/lessons/{made.lessons['text']}/complete", data={"csrf_token": token}, headers=ORIGIN, follow_redirects=False)
        assert r.headers["location"] == f"/lessons/{made.lessons['text']}?notice=preview"


async def _attempts(database: Database, who: Person) -> int:
    conn = await pg_connect(database.settings, database.secrets)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM attempts WHERE user_id = $1", uuid.UUID(who.id)))
    finally:
        await conn.close()


async def test_my_courses_and_profile(database: Database) -> None:
    async with client(database) as api:
        root = await admin(api, database)
        made = await _course(api, database, root, title="Statistics for all")
        learner = await person(api, root, "learner")
    async with client(database) as c:
        token = await _sign_in(c, learner)
        # home goes to my courses; nothing yet: a way to the catalog
        r = await c.get("/", follow_redirects=False)
        assert r.headers["location"] == "/my"
        r = await c.get("/my")
        assert r.status_code == 200 and "You are not enrolled in any course yet." in r.text and 'href="/catalog"' in r.text
        assert "Courses I teach" not in r.text
        r = await c.post(f"/courses/{made.course['id']}/enrol", data={"csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 200
        r = await c.get("/my")
        assert "Statistics for all" in r.text and "<progress" in r.text and "0%" in r.text
        assert f'class="button primary continue" href="/lessons/{made.lessons["text"]}"' in r.text and "Enrolled on" in r.text
        # the profile: e-mail and role shown, not editable
        r = await c.get("/profile")
        assert r.status_code == 200 and learner.email in r.text and "Learner" in r.text
        assert 'name="email"' not in r.text and 'name="display_name"' in r.text
        # bad input: 422, a message per field, what was typed kept, nothing saved
        r = await c.post("/profile", data={"csrf_token": token, "display_name": "   ", "language": "xx"}, headers=ORIGIN)
        assert r.status_code == 422 and "Enter your name." in r.text and "Choose one of the languages in the list." in r.text
        assert 'id="e-display_name"' in r.text and 'aria-invalid="true"' in r.text
        r = await c.post("/profile", data={"csrf_token": token, "display_name": "x" * 201, "language": "en"}, headers=ORIGIN)
        assert r.status_code == 422 and "at most 200 characters" in r.text and 'value="' + "x" * 201 + '"' in r.text
        r = await c.post("/profile", data={"display_name": "Ana", "language": "es"}, headers=ORIGIN)
        assert r.status_code == 403
        assert learner.email in (await c.get("/profile")).text and '<html lang="en">' in (await c.get("/profile")).text
        # saving: the name and the language, and the language cookie
        r = await c.post("/profile", data={"csrf_token": token, "display_name": "  Ana   María ", "language": "es"},
                         headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/profile?notice=saved" and "lmsd_lang=es" in r.headers["set-cookie"]
        c.cookies.delete("lmsd_lang")  # the profile's language alone must win over the browser's
        r = await c.get("/profile?notice=saved", headers={"accept-language": "fr"})
        assert '<html lang="es">' in r.text and 'value="Ana María"' in r.text and "Perfil" in r.text
        assert "Tu perfil se ha guardado." in r.text and "Estudiante" in r.text
        r = await c.get("/my", headers={"accept-language": "fr"})
        assert "Mis cursos" in r.text and "Continuar" in r.text
        r = await c.get(f"/courses/{made.course['id']}")
        assert "francés" in r.text  # the course's language, named in Spanish
        # French, through the same form
        r = await c.post("/profile", data={"csrf_token": token, "display_name": "Ana", "language": "fr"}, headers=ORIGIN)
        assert r.status_code == 200 and '<html lang="fr">' in r.text and "Votre profil a été enregistré." in r.text
        r = await c.get(f"/lessons/{made.lessons['text']}")
        assert "Marquer comme terminé" in r.text and "Enregistrer pour lire hors ligne" in r.text
    # an instructor also sees the courses they teach, linked to the teaching pages
    async with client(database) as c:
        await _sign_in(c, made.teacher)
        r = await c.get("/my")
        assert "Courses I teach" in r.text and f'href="/teach/courses/{made.course["id"]}"' in r.text
        r = await c.get(f"/courses/{made.course['id']}")
        assert "You teach this course." in r.text and f'href="/lessons/{made.lessons["text"]}"' in r.text
