"""An instructor's journey through the Teaching pages in Chromium, through the whole running
campus: sign in, create a course (a bad submission first), build its outline, edit a lesson,
upload a lecture video that survives a page reload half-way (the upload continues from the
server's offset), follow its transcoding until it is ready, make it a lesson, correct its
transcript, publish, enrol a learner and read the gradebook. Every page is checked with axe-core
and photographed (test-artifacts/screenshots/portal-teach-*.png)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, Request, Route

from tests.api import PASSWORD, Person, person
from tests.browser import assert_accessible, sign_in
from tests.learning import admin_of, client
from tests.media import make_clip, wait_video
from tests.support import Campus

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.slow

CUE = "Vectors have a direction and a length."
TRANSCRIPT = f"WEBVTT\n\n00:00:00.500 --> 00:00:04.000\n{CUE}\n\n00:00:04.500 --> 00:00:09.000\nMatrices transform them.\n"
CHUNK = 256 * 1024
HELD_AT = 3  # the third PATCH never reaches the server: the reload happens while it hangs


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run async set-up from this sync test (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _people(campus: Campus) -> tuple[Person, Person]:
    async with client(campus) as c:
        root = await admin_of(c)
        return await person(c, root, "instructor"), await person(c, root, "learner")  # type: ignore[arg-type]


async def _api(campus: Campus, who: Person, method: str, url: str, **kw: Any) -> Any:
    async with client(campus) as c:
        r = await c.request(method, url, headers=who.h, **kw)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None


async def _transcribed(campus: Campus, who: Person, video_id: str) -> dict[str, Any]:
    async with client(campus) as c:
        return await wait_video(c, who.h, video_id, lambda v: v["transcript_status"] != "pending", 300)


async def _quiz_attempt(campus: Campus, teacher: Person, learner: Person, course_id: str) -> None:
    async with client(campus) as c:
        r = await c.post(f"/api/v1/courses/{course_id}/quizzes", headers=teacher.h, json={
            "title": "Check", "questions": [
                {"kind": "single", "prompt": "2+2?", "options": ["4", "5"], "answer": 0, "points": 750},
                {"kind": "single", "prompt": "3+3?", "options": ["6", "7"], "answer": 0, "points": 750},
            ],
        })
        assert r.status_code == 201, r.text
        quiz = r.json()
        answers = {q["id"]: 0 for q in quiz["questions"]}
        r = await c.post(f"/api/v1/quizzes/{quiz['id']}/attempts", headers=learner.h, json={"answers": answers})
        assert r.status_code == 201, r.text


def _check(browser_page: BrowserPage, name: str) -> None:
    assert_accessible(browser_page.page, name)
    browser_page.screenshot(f"portal-teach-{name}")


def _submit(page: Page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def _lesson_titles(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("ol.lessons li .lesson-title a").all_inner_texts()]


def test_instructor_builds_a_course_with_a_resumed_lecture_upload(
    browser_campus: Campus, browser_page: BrowserPage, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "lecture.mp4", 10.0, "640x360")
    assert clip.stat().st_size > (HELD_AT + 2) * CHUNK
    teacher, learner = _run(_people(browser_campus))
    page, base = browser_page.page, browser_campus.url.rstrip("/")
    sign_in(page, base, teacher.email, PASSWORD, "/teach")
    assert page.inner_text("h1") == "Teaching" and "You do not teach a course yet" in page.inner_text("main")
    _check(browser_page, "index")

    # a new course: a bad submission first, then a good one
    with page.expect_navigation():
        page.click("text=New course")
    page.fill("#f-code", "bad code!")
    page.fill("#f-title", "")
    page.fill("#f-summary", "Vectors, matrices and what they do.")
    response = None
    with page.expect_navigation() as nav:
        page.click("form[action='/teach/courses/new'] button[type=submit]")
    response = nav.value
    assert response is not None and response.status == 422
    assert page.is_visible(".error-summary") and page.evaluate("() => document.activeElement.className") == "error-summary"
    assert "A course code has at most 64" in page.inner_text("#e-code") and page.inner_text("#e-title") == "Enter a title."
    assert page.get_attribute("#f-code", "aria-invalid") == "true" and page.input_value("#f-code") == "bad code!"
    assert page.input_value("#f-summary") == "Vectors, matrices and what they do."
    _check(browser_page, "new-course-errors")
    code = f"LA-{int(time.time())}"
    page.fill("#f-code", code)
    page.fill("#f-title", "Linear Algebra")
    page.select_option("#f-language", "en")
    page.fill("#f-tags", "maths, first year")
    page.check("#f-self_enrol")
    _submit(page, "form[action='/teach/courses/new']")
    assert page.inner_text("h1") == "Linear Algebra" and "The course was created" in page.inner_text("p.notice")
    course_id = re.search(r"/teach/courses/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
    _check(browser_page, "course-new")

    # the outline: a module and two lessons, then the second moved up
    page.fill("#f-module_title", "Week 1")
    _submit(page, f"form[action='/teach/courses/{course_id}/modules']")
    for title in ("Vectors", "Matrices"):
        page.fill("#f-lesson_title", title)
        page.select_option("#f-lesson_kind", "text")
        assert page.is_hidden("#f-lesson_video")  # teach.js shows only what the kind needs
        _submit(page, f"form[action='/teach/courses/{course_id}/lessons']")
    assert _lesson_titles(page) == ["Vectors", "Matrices"]
    with page.expect_navigation():
        page.locator("ol.lessons li", has_text="Matrices").get_by_role("button", name="Move up").click()
    assert _lesson_titles(page) == ["Matrices", "Vectors"] and "The order was changed." in page.inner_text("p.notice")
    _check(browser_page, "course-outline")

    # a text lesson's body
    with page.expect_navigation():
        page.click("ol.lessons >> text=Vectors")
    page.fill("#f-body", "# Vectors\n\nA vector has a **direction** and a length.")
    _submit(page, "form[action^='/teach/lessons/']")
    assert "The lesson was saved." in page.inner_text("p.notice")
    assert page.input_value("#f-body").startswith("# Vectors")
    assert page.get_attribute("a[href^='/lessons/']", "href") is not None
    _check(browser_page, "lesson")

    # the lecture upload: slowed to small chunks, stopped by a reload at the third one
    with page.expect_navigation():
        page.click("nav.course-nav >> text=Videos")
    assert page.is_enabled("form[data-upload] button[type=submit]") and page.is_hidden("[data-upload-nojs]")
    _check(browser_page, "videos")
    page.evaluate(f"() => {{ document.querySelector('form[data-upload]').dataset.chunkSize = '{CHUNK}'; }}")
    held: list[Route] = []
    patches_before: list[int] = []

    def throttle(route: Route, request: Request) -> None:
        if request.method != "PATCH":
            route.continue_()
            return
        patches_before.append(int(request.headers["upload-offset"]))
        if len(patches_before) >= HELD_AT:
            held.append(route)  # never answered: the upload hangs here
        else:
            route.continue_()

    page.route("**/api/v1/uploads/**", throttle)
    page.set_input_files("#f-upload-file", str(clip))
    page.fill("#f-title", "Lecture 1")
    page.click("form[data-upload] button[type=submit]")
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert held, f"the upload did not get to its third chunk: {patches_before}"
    assert patches_before[:HELD_AT] == [0, CHUNK, 2 * CHUNK]
    assert int(page.get_attribute("#upload-progress", "value") or 0) > 0 and "uploaded" in page.inner_text("[data-upload-status]")
    page.reload()
    page.unroute("**/api/v1/uploads/**")
    # the page remembers the unfinished upload and how far the server got
    page.wait_for_selector("[data-upload-remembered] li")
    remembered = page.inner_text("[data-upload-remembered] li")
    share = 2 * CHUNK * 100 // clip.stat().st_size
    assert f"{share}% of lecture.mp4 uploaded — choose the same file to resume" in remembered, remembered
    _check(browser_page, "videos-resume")
    patches_after: list[int] = []
    creations: list[str] = []

    def record(request: Request) -> None:
        if "/api/v1/uploads" in request.url and request.method == "PATCH":
            patches_after.append(int(request.headers["upload-offset"]))
        if request.url.endswith("/api/v1/uploads") and request.method == "POST":
            creations.append(request.url)

    page.on("request", record)
    page.set_input_files("#f-upload-file", str(clip))
    page.wait_for_function(
        "() => document.querySelector('[data-upload-status]').textContent.includes('continues from')"
    )
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('[data-upload-status]').textContent.startsWith('Upload complete')", timeout=60_000
    )
    assert patches_after and patches_after[0] == 2 * CHUNK, patches_after  # continued from the server's offset
    assert not creations, "a new upload was created instead of resuming"
    assert page.is_hidden("[data-upload-remembered]")
    # transcoding progress, polled until the video is ready
    page.wait_for_selector("[data-upload-video]:not([hidden])")
    page.wait_for_function(
        "() => document.querySelector('[data-upload-video] [data-video-label]').textContent === 'Ready'", timeout=180_000
    )
    assert page.inner_text("[data-upload-video] [data-video-name]") == "Lecture 1"  # the title given
    assert page.is_visible("[data-upload-video] [data-video-next]") and "is ready to be watched" in page.inner_text("[data-upload-status]")
    video_id = page.input_value("#f-video")
    assert re.fullmatch(r"[0-9a-f-]{36}", video_id)
    _check(browser_page, "video-ready")
    # … and it becomes a lesson of the module
    _submit(page, f"form[action='/teach/courses/{course_id}/video-lessons']")
    assert _lesson_titles(page) == ["Matrices", "Vectors", "Lecture 1"]
    assert "(Video)" in page.locator("ol.lessons li", has_text="Lecture 1").inner_text()

    # the transcript: a bad file refused with the line, then a known cue published
    _run(_transcribed(browser_campus, teacher, video_id))
    page.goto(f"{base}/teach/videos/{video_id}/transcript")
    assert "English" in page.inner_text("dl.facts")
    page.fill("#f-webvtt", "00:00:00.500 --> 00:00:04.000\nNo header\n")
    with page.expect_navigation() as nav:
        page.click(f"form[action='/teach/videos/{video_id}/transcript'] button[type=submit]")
    assert nav.value is not None and nav.value.status == 422
    assert "line 1" in page.inner_text("#e-webvtt") and "WEBVTT header" in page.inner_text("#e-webvtt")
    _check(browser_page, "transcript-error")
    page.fill("#f-webvtt", TRANSCRIPT)
    _submit(page, f"form[action='/teach/videos/{video_id}/transcript']")
    assert "The transcript was saved" in page.inner_text("p.notice") and CUE in page.input_value("#f-webvtt")
    transcript = _run(_api(browser_campus, teacher, "GET", f"/api/v1/videos/{video_id}/transcript"))
    assert transcript["cues"][0]["text"] == CUE and transcript["source"] == "edited"
    _check(browser_page, "transcript")

    # publish
    page.goto(f"{base}/teach/courses/{course_id}")
    _submit(page, f"form[action='/teach/courses/{course_id}/status']")
    assert "The course is published" in page.inner_text("p.notice")
    assert _run(_api(browser_campus, teacher, "GET", f"/api/v1/courses/{course_id}"))["course"]["status"] == "published"
    _check(browser_page, "course-published")

    # enrolments: an unknown address is said so, the learner is enrolled by e-mail
    with page.expect_navigation():
        page.click("nav.course-nav >> text=Enrolments")
    page.fill("#f-email", "nobody@nowhere.example")
    _submit(page, f"form[action='/teach/courses/{course_id}/enrolments']")
    assert page.inner_text("#e-email") == "Nobody on this campus has this e-mail address."
    _check(browser_page, "enrolments-error")
    page.fill("#f-email", learner.email)
    _submit(page, f"form[action='/teach/courses/{course_id}/enrolments']")
    assert "The person was enrolled." in page.inner_text("p.notice") and learner.email in page.inner_text("table.enrolments")
    _check(browser_page, "enrolments")

    # the gradebook, once the learner answered a quiz
    _run(_quiz_attempt(browser_campus, teacher, learner, course_id))
    with page.expect_navigation():
        page.click("nav.course-nav >> text=Gradebook")
    table = page.inner_text("table.gradebook")
    assert "Check" in table and "1,500" in table and "1 attempt" in table
    assert page.get_attribute("a[href$='/gradebook.csv']", "href") == f"/teach/courses/{course_id}/gradebook.csv"
    _check(browser_page, "gradebook")

    # refused forms answer 422 by design (Chromium logs a failed status for them); nothing else
    browser_page.log.assert_clean(allow=[r"status of 422"])
