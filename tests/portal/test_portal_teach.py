"""The instructor's portal pages (/teach), in-process on the real database: creating a course
with every kind of bad input (422, a message per field, the values kept, nothing created),
settings with optimistic concurrency, publishing, the outline (modules, lessons, reordering),
lesson edits, the videos page, transcripts (bad WebVTT → 422 with the parser's line), enrolments
by e-mail and the gradebook; learners get the 403 page, another campus's ids the 404 page, and a
form without its CSRF token changes nothing."""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from tests.api import PASSWORD, Person, admin, client, course, login, person
from tests.db import Database
from tests.media import make_clip, uploaded_video

ORIGIN = {"origin": "http://a.example"}


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found, "no csrf-token meta in the page"
    return found.group(1)


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="e-{re.escape(name)}">([^<]*)</p>', html)
    assert found, f"no error shown for {name}"
    assert f'id="f-{name}"' in html and "aria-invalid=\"true\"" in html
    return unescape(found.group(1))


class Portal:
    """A signed-in browser session of the portal (cookie + the pages' CSRF token)."""

    def __init__(self, c: AsyncTestClient, who: Person) -> None:  # type: ignore[type-arg]
        self.c, self.who, self.token = c, who, ""

    async def get(self, url: str) -> Any:
        r = await self.c.get(url)
        if "csrf-token" in r.text:
            self.token = _csrf(r.text)
        return r

    async def post(self, url: str, data: dict[str, str], csrf: bool = True) -> Any:
        body = {**data, "csrf_token": self.token} if csrf else data
        return await self.c.post(url, data=body, headers=ORIGIN, follow_redirects=False)


@asynccontextmanager
async def signed_in(database: Database, who: Person) -> AsyncIterator[Portal]:
    async with client(database) as c:
        r = await c.post("/login", data={"email": who.email, "password": PASSWORD}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303, r.text
        portal = Portal(c, who)
        await portal.get("/teach")
        yield portal


async def _outline(c: AsyncTestClient, who: Person, course_id: str) -> dict[str, Any]:  # type: ignore[type-arg]
    r = await c.get(f"/api/v1/courses/{course_id}", headers=who.h)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _my_codes(c: AsyncTestClient, who: Person) -> list[str]:  # type: ignore[type-arg]
    r = await c.get("/api/v1/courses?status=draft&limit=100", headers=who.h)
    return [x["code"] for x in r.json()["items"]]


async def test_new_course_every_bad_input_then_created(database: Database) -> None:
    async with client(database) as api:
        adm = await admin(api, database)
        teacher = await person(api, adm, "instructor")
        taken = await course(api, teacher, publish=False)
        async with signed_in(database, teacher) as p:
            r = await p.get("/teach/courses/new")
            assert r.status_code == 200 and 'action="/teach/courses/new"' in r.text and 'name="code"' in r.text
            code = f"ALG-{uuid.uuid4().hex[:6]}"
            good = {"code": code, "title": "Algebra I", "summary": "Vectors.", "language": "fr", "tags": "maths, first year, maths", "self_enrol": "on"}
            cases = [
                ({"title": ""}, "title", "Enter a title."),
                ({"title": "x" * 301}, "title", "The title is too long"),
                ({"code": ""}, "code", "Enter a course code."),
                ({"code": "bad code!"}, "code", "A course code has at most 64"),
                ({"code": "-starts-with-dash"}, "code", "A course code has at most 64"),
                ({"code": taken["code"]}, "code", "already exists"),
                ({"language": "english!"}, "language", "Choose a language from the list."),
                ({"tags": ",".join(f"t{i}" for i in range(21))}, "tags", "at most 20 tags"),
            ]
            for change, name, message in cases:
                r = await p.post("/teach/courses/new", {**good, **change})
                assert r.status_code == 422, (change, r.status_code)
                assert message in _field_error(r.text, name), (change, _field_error(r.text, name))
                assert 'class="error-summary"' in r.text and f'href="#f-{name}"' in r.text
                # what was typed is kept
                kept = change.get("title", good["title"]) if name != "title" else good["summary"]
                assert unescape(kept) in unescape(r.text)
            assert code not in await _my_codes(api, teacher)
            assert (await _my_codes(api, teacher)).count(taken["code"]) == 1
            # the valid form creates a draft course taught by its author
            r = await p.post("/teach/courses/new", good)
            assert r.status_code == 303 and re.fullmatch(r"/teach/courses/[0-9a-f-]{36}\?notice=created", r.headers["location"])
            course_id = r.headers["location"].split("/")[3].split("?")[0]
            page = await p.get(r.headers["location"])
            assert page.status_code == 200 and "The course was created" in page.text and "<h1>Algebra I</h1>" in page.text
            made = (await _outline(api, teacher, course_id))["course"]
            assert made["code"] == code and made["language"] == "fr" and made["tags"] == ["maths", "first year"]
            assert made["self_enrol"] is True and made["status"] == "draft" and made["summary"] == "Vectors."
            listing = await p.get("/teach")
            assert listing.status_code == 200 and "Algebra I" in listing.text and "Draft" in _text(listing.text)
            assert 'href="/teach/courses/new"' in listing.text


async def test_settings_publish_outline_reorder_and_lesson_edit(database: Database) -> None:
    async with client(database) as api:
        adm = await admin(api, database)
        teacher = await person(api, adm, "instructor")
        crs = await course(api, teacher, publish=False)
        cid = crs["id"]
        async with signed_in(database, teacher) as p:
            page = await p.get(f"/teach/courses/{cid}")
            assert page.status_code == 200 and 'name="version" value="1"' in page.text
            settings = {"title": "Linear Algebra II", "summary": "More.", "language": "en", "tags": "maths", "version": "1"}
            r = await p.post(f"/teach/courses/{cid}", settings)
            assert r.status_code == 303 and r.headers["location"].endswith("notice=saved")
            assert (await _outline(api, teacher, cid))["course"]["title"] == "Linear Algebra II"
            # the same form again, based on version 1: someone else's edit is not overwritten
            r = await p.post(f"/teach/courses/{cid}", {**settings, "title": "Stale edit"})
            assert r.status_code == 409 and "Someone changed this course" in r.text and 'value="Stale edit"' in r.text
            assert (await _outline(api, teacher, cid))["course"]["title"] == "Linear Algebra II"
            r = await p.post(f"/teach/courses/{cid}", {**settings, "title": "", "version": "2"})
            assert r.status_code == 422 and _field_error(r.text, "title") == "Enter a title."
            # publish, unpublish
            r = await p.post(f"/teach/courses/{cid}/status", {"status": "published", "version": "2"})
            assert r.status_code == 303 and (await _outline(api, teacher, cid))["course"]["status"] == "published"
            page = await p.get(f"/teach/courses/{cid}?notice=published")
            assert "The course is published" in page.text and ">Unpublish<" in page.text
            # modules: a title is needed
            r = await p.post(f"/teach/courses/{cid}/modules", {"module_title": "  "})
            assert r.status_code == 422 and _field_error(r.text, "module_title") == "Enter the module's title."
            for title in ("Week 1", "Week 2"):
                assert (await p.post(f"/teach/courses/{cid}/modules", {"module_title": title})).status_code == 303
            modules = (await _outline(api, teacher, cid))["modules"]
            assert [m["title"] for m in modules] == ["Week 1", "Week 2"]
            week1, week2 = modules[0]["id"], modules[1]["id"]
            # lessons: text ones; a video lesson needs a video, a lesson a module of this course
            for title in ("One", "Two"):
                r = await p.post(f"/teach/courses/{cid}/lessons", {"lesson_module": week1, "lesson_title": title, "lesson_kind": "text"})
                assert r.status_code == 303, r.text
            r = await p.post(f"/teach/courses/{cid}/lessons", {"lesson_module": week1, "lesson_title": "Film", "lesson_kind": "video"})
            assert r.status_code == 422 and "needs a video" in _field_error(r.text, "lesson_video")
            r = await p.post(f"/teach/courses/{cid}/lessons", {"lesson_module": str(uuid.uuid4()), "lesson_title": "", "lesson_kind": "text"})
            assert r.status_code == 422 and _field_error(r.text, "lesson_title") == "Enter the lesson's title."
            assert "Choose the module" in _field_error(r.text, "lesson_module")
            lessons = (await _outline(api, teacher, cid))["modules"][0]["lessons"]
            assert [x["title"] for x in lessons] == ["One", "Two"]
            one, two = lessons[0]["id"], lessons[1]["id"]
            # reordering: lesson Two up, module Week 2 up; moving the first up changes nothing
            page = await p.get(f"/teach/courses/{cid}")
            assert f'action="/teach/lessons/{two}/move"' in page.text
            assert (await p.post(f"/teach/lessons/{two}/move", {"direction": "up"})).status_code == 303
            assert (await p.post(f"/teach/modules/{week2}/move", {"direction": "up"})).status_code == 303
            assert (await p.post(f"/teach/modules/{week2}/move", {"direction": "up"})).status_code == 303
            outline = await _outline(api, teacher, cid)
            assert [m["title"] for m in outline["modules"]] == ["Week 2", "Week 1"]
            assert [x["title"] for x in outline["modules"][1]["lessons"]] == ["Two", "One"]
            # editing a text lesson: its body, then a stale edit refused
            page = await p.get(f"/teach/lessons/{one}")
            assert page.status_code == 200 and f'href="/lessons/{one}"' in page.text and 'name="body"' in page.text
            body = "# Vectors\n\nA vector has a *direction*."
            r = await p.post(f"/teach/lessons/{one}", {"title": "One (edited)", "body": body, "version": "1"})
            assert r.status_code == 303
            lesson = (await api.get(f"/api/v1/lessons/{one}", headers=teacher.h)).json()
            assert lesson["body"] == body and lesson["title"] == "One (edited)"
            r = await p.post(f"/teach/lessons/{one}", {"title": "Stale", "body": "lost?", "version": "1"})
            assert r.status_code == 409 and "Someone changed this lesson" in r.text
            r = await p.post(f"/teach/lessons/{one}", {"title": "", "body": "x", "version": "2"})
            assert r.status_code == 422 and _field_error(r.text, "title") == "Enter the lesson's title."
            assert (await api.get(f"/api/v1/lessons/{one}", headers=teacher.h)).json()["body"] == body
            # rename and delete a module
            r = await p.post(f"/teach/modules/{week2}/rename", {f"rename_{week2}": "", "version": "1"})
            assert r.status_code == 422 and _field_error(r.text, f"rename_{week2}") == "Enter the module's title."
            r = await p.post(f"/teach/modules/{week2}/rename", {f"rename_{week2}": "Revision", "version": "1"})
            assert r.status_code == 303
            r = await p.post(f"/teach/modules/{week1}/delete", {})
            assert r.status_code == 303
            assert [m["title"] for m in (await _outline(api, teacher, cid))["modules"]] == ["Revision"]


async def _second_campus_course(api: AsyncTestClient, root: Person) -> str:  # type: ignore[type-arg]
    host = f"b-{uuid.uuid4().hex[:6]}.example"
    email = f"admin-{uuid.uuid4().hex[:6]}@b.example"
    r = await api.post("/api/v1/campuses", headers=root.h, json={"name": "Campus B", "host": host, "admin_email": email, "admin_password": PASSWORD})
    assert r.status_code == 201, r.text
    b_id = r.json()["id"]
    tok = await login(api, email, PASSWORD, b_id)
    me = (await api.get("/api/v1/me", headers={"authorization": f"Bearer {tok['access_token']}"})).json()
    b_admin = Person(me["id"], me["email"], tok["access_token"], "admin")
    return str((await course(api, b_admin))["id"])


async def test_learners_other_teachers_other_campus_and_csrf(database: Database) -> None:
    async with client(database) as api:
        adm = await admin(api, database)
        teacher = await person(api, adm, "instructor")
        other_teacher = await person(api, adm, "instructor")
        learner = await person(api, adm, "learner")
        crs = await course(api, teacher, publish=False)
        cid = crs["id"]
        await api.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "M"})
        b_course = await _second_campus_course(api, adm)
        async with signed_in(database, learner) as p:
            for url in ("/teach", "/teach/courses/new", f"/teach/courses/{cid}", f"/teach/courses/{cid}/videos",
                        f"/teach/courses/{cid}/enrolments", f"/teach/courses/{cid}/gradebook"):
                r = await p.get(url)
                assert r.status_code == 403 and "Not allowed" in r.text and r.headers["content-type"].startswith("text/html"), url
            r = await p.post("/teach/courses/new", {"code": f"L{uuid.uuid4().hex[:6]}", "title": "Mine", "language": "en"})
            assert r.status_code == 403
        async with signed_in(database, other_teacher) as p:
            # a draft someone else teaches does not exist for this instructor; a published one may not be changed
            assert (await p.get(f"/teach/courses/{cid}")).status_code == 404
            await api.patch(f"/api/v1/courses/{cid}", headers={**teacher.h, "if-match": "*"}, json={"status": "published"})
            assert (await p.get(f"/teach/courses/{cid}")).status_code == 403
            r = await p.post(f"/teach/courses/{cid}/modules", {"module_title": "Sneaky"})
            assert r.status_code == 403
        async with signed_in(database, teacher) as p:
            # another campus's course looks like no course at all
            for url in (f"/teach/courses/{b_course}", f"/teach/courses/{b_course}/videos", f"/teach/courses/{b_course}/gradebook"):
                r = await p.get(url)
                assert r.status_code == 404 and "Page not found" in r.text, url
            r = await p.post(f"/teach/courses/{b_course}/modules", {"module_title": "X"})
            assert r.status_code == 404
            # a form without the page's token (or with a forged one) changes nothing
            r = await p.post(f"/teach/courses/{cid}/status", {"status": "draft", "version": "*"}, csrf=False)
            assert r.status_code == 403 and "Not allowed" in r.text
            r = await p.post(f"/teach/courses/{cid}/modules", {"module_title": "Forged", "csrf_token": "forged"}, csrf=False)
            assert r.status_code == 403
            code = f"X{uuid.uuid4().hex[:6]}"
            r = await p.post("/teach/courses/new", {"code": code, "title": "T", "language": "en"}, csrf=False)
            assert r.status_code == 403
            r = await p.c.post(f"/teach/courses/{cid}/modules", data={"module_title": "Elsewhere", "csrf_token": p.token},
                               headers={"origin": "http://evil.example"})
            assert r.status_code == 403
            outline = await _outline(api, teacher, cid)
            assert outline["course"]["status"] == "published" and [m["title"] for m in outline["modules"]] == ["M"]
            assert code not in await _my_codes(api, teacher)
            # an unknown lesson, video or enrolment is a 404 page
            for url in (f"/teach/lessons/{uuid.uuid4()}", f"/teach/videos/{uuid.uuid4()}/transcript"):
                assert (await p.get(url)).status_code == 404


TRANSCRIPT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nWelcome to the lecture.\n"


async def test_videos_page_transcript_and_video_lesson(database: Database) -> None:
    clip = make_clip(Path(tempfile.gettempdir()) / "lmsd-test-clip.mp4")
    async with client(database) as api:
        adm = await admin(api, database)
        teacher = await person(api, adm, "instructor")
        crs = await course(api, teacher, publish=False)
        cid = crs["id"]
        module = (await api.post(f"/api/v1/courses/{cid}/modules", headers=teacher.h, json={"title": "Week 1"})).json()
        video_id = await uploaded_video(api, teacher.h, cid, clip, title="Intro film")
        async with signed_in(database, teacher) as p:
            page = await p.get(f"/teach/courses/{cid}/videos")
            assert page.status_code == 200
            html = page.text
            assert f'data-course-id="{cid}"' in html and 'data-endpoint="/api/v1/uploads"' in html and 'accept="video/*"' in html
            assert "vendor/tus.min.js" in html and "upload.js" in html and "<progress" in html
            assert "Intro film" in html and "Waiting to be transcoded" in html and f'data-video-poll="{video_id}"' in html
            assert f'href="/teach/videos/{video_id}/transcript"' in html
            # the transcript: none yet; bad WebVTT is refused with the parser's reason; a good one is published
            page = await p.get(f"/teach/videos/{video_id}/transcript")
            assert page.status_code == 200 and "There is no transcript yet" in page.text and "English" in page.text
            bad = "00:00:00.000 --> 00:00:01.000\nNo header\n"
            r = await p.post(f"/teach/videos/{video_id}/transcript", {"webvtt": bad})
            assert r.status_code == 422
            message = _field_error(r.text, "webvtt")
            assert "not a valid WebVTT" in message and "line 1" in message and "WEBVTT header" in message
            assert "No header" in r.text  # what was typed is kept
            r = await p.post(f"/teach/videos/{video_id}/transcript", {"webvtt": "WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nBackwards\n"})
            assert r.status_code == 422 and "line 3" in _field_error(r.text, "webvtt")
            assert (await api.get(f"/api/v1/videos/{video_id}/transcript", headers=teacher.h)).status_code == 404
            r = await p.post(f"/teach/videos/{video_id}/transcript", {"webvtt": TRANSCRIPT})
            assert r.status_code == 303, r.text
            t = (await api.get(f"/api/v1/videos/{video_id}/transcript", headers=teacher.h)).json()
            assert t["source"] == "edited" and t["cues"][0]["text"] == "Welcome to the lecture."
            page = await p.get(r.headers["location"])
            assert "Welcome to the lecture." in page.text and "The transcript was saved" in page.text and "edited by hand" in page.text
            # transcribing again needs a transcoded video: said on the page, nothing changes
            r = await p.post(f"/teach/videos/{video_id}/transcribe", {})
            assert r.status_code == 409 and "cannot be transcribed now" in r.text
            # the video as a lesson: a module and a video of this course are needed
            r = await p.post(f"/teach/courses/{cid}/video-lessons", {"video": str(uuid.uuid4()), "module": module["id"], "lesson_title": ""})
            assert r.status_code == 422 and _field_error(r.text, "video") == "Choose one of this course's videos."
            r = await p.post(f"/teach/courses/{cid}/video-lessons", {"video": video_id, "module": module["id"], "lesson_title": ""})
            assert r.status_code == 303
            lessons = (await _outline(api, teacher, cid))["modules"][0]["lessons"]
            assert [(x["title"], x["kind"]) for x in lessons] == [("Intro film", "video")]
            page = await p.get(f"/teach/lessons/{lessons[0]['id']}")
            assert page.status_code == 200 and f'<option value="{video_id}" selected>' in page.text


async def test_enrolments_by_email_and_gradebook(database: Database) -> None:
    async with client(database) as api:
        adm = await admin(api, database)
        teacher = await person(api, adm, "instructor")
        learner = await person(api, adm, "learner")
        crs = await course(api, teacher, publish=True, self_enrol=False)
        cid = crs["id"]
        quiz = (await api.post(f"/api/v1/courses/{cid}/quizzes", headers=teacher.h, json={"title": "Big check", "questions": [
            {"kind": "single", "prompt": "2+2?", "options": ["4", "5"], "answer": 0, "points": 1000},
            {"kind": "single", "prompt": "3+3?", "options": ["6", "7"], "answer": 0, "points": 1000},
            {"kind": "single", "prompt": "1+1?", "options": ["2", "3"], "answer": 0, "points": 500},
        ]})).json()
        async with signed_in(database, teacher) as p:
            page = await p.get(f"/teach/courses/{cid}/enrolments")
            assert page.status_code == 200 and "Nobody is enrolled yet." in page.text
            for email, message in (("", "Enter the person's e-mail address."), ("nobody@nowhere.example", "Nobody on this campus has this e-mail address.")):
                r = await p.post(f"/teach/courses/{cid}/enrolments", {"email": email})
                assert r.status_code == 422 and _field_error(r.text, "email") == message
                assert email in r.text
            r = await p.post(f"/teach/courses/{cid}/enrolments", {"email": learner.email.upper()})
            assert r.status_code == 303 and r.headers["location"].endswith("notice=enrolled")
            r = await p.post(f"/teach/courses/{cid}/enrolments", {"email": learner.email})
            assert r.status_code == 422 and "already enrolled" in _field_error(r.text, "email")
            page = await p.get(f"/teach/courses/{cid}/enrolments")
            text = _text(page.text)
            assert learner.email in text and "Active" in text and "Withdraw" in text
            enrolment = (await api.get(f"/api/v1/courses/{cid}/enrolments", headers=teacher.h)).json()["items"][0]
            r = await p.post(f"/teach/enrolments/{enrolment['id']}/status", {"status": "withdrawn"})
            assert r.status_code == 303
            assert "Withdrawn" in _text((await p.get(f"/teach/courses/{cid}/enrolments")).text)
            r = await p.post(f"/teach/enrolments/{enrolment['id']}/status", {"status": "active"})
            assert r.status_code == 303
            # the learner answers two of three right: 2,000 of 2,500 points
            q = (await api.get(f"/api/v1/quizzes/{quiz['id']}", headers=learner.h)).json()["questions"]
            answers = {q[0]["id"]: 0, q[1]["id"]: 0, q[2]["id"]: 1}
            r = await api.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=learner.h, json={"answers": answers})
            assert r.status_code == 201 and r.json()["score"] == 2000, r.text
            page = await p.get(f"/teach/courses/{cid}/gradebook")
            assert page.status_code == 200
            html = page.text
            assert '<th scope="col">Learner</th>' in html and '<th scope="row">' in html and "Big check" in html
            assert "2,000" in html and "out of 2,500" in html and "1 attempt" in html
            assert f'href="/teach/courses/{cid}/gradebook.csv"' in html
            csv_ = await p.c.get(f"/teach/courses/{cid}/gradebook.csv")
            assert csv_.status_code == 200 and csv_.headers["content-type"].startswith("text/csv")
            rows = csv_.text.strip().splitlines()
            assert rows[0] == "learner,email,Big check (/2500),total" and rows[1].endswith(f",{learner.email},2000,2000")
            # numbers in the page's language
            await p.c.post("/language", data={"lang": "fr", "csrf_token": p.token}, headers=ORIGIN)
            page = await p.get(f"/teach/courses/{cid}/gradebook")
            assert "2\u202f000" in page.text and "Carnet de notes" in page.text
