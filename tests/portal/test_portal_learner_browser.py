"""A learner's whole journey through the portal in Chromium, on the running campus: sign in, find
a course in the catalog, enrol, read a text lesson with code and maths (MathML), mark it complete,
watch the lecture (it plays, a subtitle shows), answer the quiz (a bad submission first), and see
the course completed on "My courses" once the worker has applied the events; then the profile,
with bad input. Every page passes axe-core and is kept as a screenshot."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.api import PASSWORD, person
from tests.browser import assert_accessible, sign_in
from tests.learning import admin_of, client
from tests.media import make_clip, uploaded_video, wait_video
from tests.support import Campus

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.slow

CUE = "Welcome to linear algebra."
TRANSCRIPT = f"WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n{CUE}\n\n00:00:05.000 --> 00:00:09.500\nToday: vectors and matrices.\n"
TEXT = """# Vectors

A vector $v = (v_1, v_2)$ has the length

$$
\\lVert v \\rVert = \\sqrt{v_1^2 + v_2^2}
$$

```python
def norm(v):
    return sum(x * x for x in v) ** 0.5
```
"""


async def _prepare(campus: Campus, clip: Path, title: str) -> dict[str, Any]:
    async with client(campus) as c:
        root = await admin_of(c)
        teacher = await person(c, root, "instructor")  # type: ignore[arg-type]
        r = await c.post("/api/v1/courses", headers=teacher.h, json={
            "code": f"LA{uuid.uuid4().hex[:6]}", "title": title, "summary": "Vectors and matrices, step by step.",
            "language": "en", "tags": ["maths"], "self_enrol": True,
        })
        assert r.status_code == 201, r.text
        crs = r.json()
        module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "Week 1"})).json()
        video_id = await uploaded_video(c, teacher.h, crs["id"], clip, title="Vectors")
        quiz = (await c.post(f"/api/v1/courses/{crs['id']}/quizzes", headers=teacher.h, json={
            "title": "Check", "questions": [{"kind": "single", "prompt": "What is 2 + 2?", "options": ["4", "5"], "answer": 0, "points": 2}],
        })).json()
        lessons = {}
        for key, body in (
            ("text", {"title": "Vectors", "body": TEXT}),
            ("video", {"title": "The lecture", "kind": "video", "video_id": video_id}),
            ("quiz", {"title": "Check your understanding", "kind": "quiz", "quiz_id": quiz["id"]}),
        ):
            r = await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json=body)
            assert r.status_code == 201, r.text
            lessons[key] = r.json()["id"]
        r = await c.get(f"/api/v1/courses/{crs['id']}", headers=teacher.h)
        r = await c.patch(f"/api/v1/courses/{crs['id']}", headers={**teacher.h, "if-match": r.headers["etag"]}, json={"status": "published"})
        assert r.status_code == 200, r.text
        learner = await person(c, root, "learner")  # type: ignore[arg-type]
        await wait_video(c, teacher.h, video_id, lambda v: v["status"] == "ready", 300)
        # a known transcript (automatic recognition is tested elsewhere) gives a known cue
        await wait_video(c, teacher.h, video_id, lambda v: v["transcript_status"] != "pending", 300)
        r = await c.put(f"/api/v1/videos/{video_id}/transcript", headers={**teacher.h, "content-type": "text/vtt"}, content=TRANSCRIPT)
        assert r.status_code == 200, r.text
        return {"course": crs["id"], "lessons": lessons, "learner": learner}


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run async set-up from this sync test (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _check(browser_page: BrowserPage, name: str) -> None:
    assert_accessible(browser_page.page, name)
    browser_page.screenshot(f"portal-learner-{name}")


def _submit(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def test_learner_journey_from_catalog_to_completed_course(
    browser_campus: Campus, browser_page: BrowserPage, tmp_path: Path
) -> None:
    title = f"Linear algebra {uuid.uuid4().hex[:6]}"
    made = _run(_prepare(browser_campus, make_clip(tmp_path / "lecture.mp4", 10.0, "640x360"), title))
    lessons, learner = made["lessons"], made["learner"]
    page, base = browser_page.page, browser_campus.url.rstrip("/")
    sign_in(page, base, learner.email, PASSWORD, "/catalog")
    assert page.url.endswith("/catalog")

    # the catalog: search by title
    page.fill("#f-q", title.split()[-1])
    _submit(page, ".catalog-search button[type=submit]")
    cards = page.locator(".course-card")
    assert cards.count() == 1 and cards.first.locator("h3").inner_text() == title
    _check(browser_page, "catalog")

    # the course page: outline, and the Enrol button
    _submit(page, f".course-card a[href='/courses/{made['course']}']")
    assert page.inner_text("h1") == title
    assert page.locator(".lesson-item").count() == 3 and page.locator(".lesson-item a").count() == 0
    _check(browser_page, "course")
    _submit(page, ".enrol-form button[type=submit]")
    assert "You are enrolled" in page.inner_text(".notice")
    assert page.locator(".lesson-item a").count() == 3
    _check(browser_page, "course-enrolled")

    # the text lesson: highlighted code and MathML
    _submit(page, ".course-progress a.button")
    assert page.url.endswith(f"/lessons/{lessons['text']}")
    assert page.locator(".lesson-body math").count() == 2
    assert page.locator(".lesson-body math[display=block]").count() == 1
    assert page.locator(".lesson-body pre.highlight .k").first.inner_text() == "def"
    assert page.locator("button.save-offline").count() == 1
    _check(browser_page, "text-lesson")
    _submit(page, "form.complete-lesson button[type=submit]")
    assert page.url.endswith(f"/lessons/{lessons['video']}?notice=completed")

    # the video lesson: it plays in the portal's layout, and the subtitle shows
    assert "Lesson marked as complete." in page.inner_text(".notice")
    page.wait_for_function("() => window.lmsdPlayers && window.lmsdPlayers.length === 1 && window.lmsdPlayers[0].hls !== null")
    page.evaluate("() => document.querySelector('video').play()")
    page.wait_for_function("() => document.querySelector('video').currentTime > 2.5", timeout=30_000)
    page.wait_for_function(
        """() => Array.from(document.querySelector('video').textTracks)
             .some(t => t.mode === 'showing' && t.activeCues && t.activeCues.length > 0)""",
        timeout=15_000,
    )
    cue = page.evaluate(
        "() => Array.from(document.querySelector('video').textTracks).find(t => t.activeCues && t.activeCues.length).activeCues[0].text"
    )
    assert cue == CUE
    page.evaluate("() => document.querySelector('video').pause()")
    _check(browser_page, "video-lesson")
    _submit(page, "form.complete-lesson button[type=submit]")
    assert page.url.endswith(f"/lessons/{lessons['quiz']}?notice=completed")

    # the quiz: nothing chosen is refused with a message on the question; then the right answer
    _check(browser_page, "quiz-lesson")
    _submit(page, ".quiz-form button[type=submit]")
    assert page.locator(".error-summary").is_visible()
    assert "choose an answer" in page.inner_text(".question .field-error")
    assert page.evaluate("() => document.activeElement.classList.contains('error-summary')")
    _check(browser_page, "quiz-error")
    page.check(".question input[type=radio][value='0']")
    _submit(page, ".quiz-form button[type=submit]")
    assert page.inner_text("h1") == "Results: Check your understanding"
    assert "2 out of 2 points" in page.inner_text(".quiz-score")
    assert page.locator(".feedback.is-right").count() == 1
    _check(browser_page, "quiz-feedback")

    # my courses: completed, once the worker has applied the events
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{base}/my")
        card = page.locator(".my-course", has_text=title)
        if card.locator(".badge-ok").count() == 1:
            break
        assert time.monotonic() < deadline, "the course never showed as completed: " + card.inner_text()
        page.wait_for_timeout(1000)
    assert "100%" in card.locator(".progress").inner_text()
    assert card.locator("progress").get_attribute("value") == "100"
    _check(browser_page, "my")
    page.goto(f"{base}/courses/{made['course']}")
    assert page.locator(".lesson-item.is-done").count() == 3 and "Course completed" in page.inner_text(".course-progress")

    # the profile: an empty name is refused on the field; then a new name and Spanish
    page.goto(f"{base}/profile")
    assert learner.email in page.inner_text(".facts")
    _check(browser_page, "profile")
    page.fill("#f-display_name", "   ")
    _submit(page, ".profile-form button[type=submit]")
    assert page.inner_text("#e-display_name") == "Enter your name."
    assert page.get_attribute("#f-display_name", "aria-invalid") == "true"
    _check(browser_page, "profile-error")
    page.fill("#f-display_name", "Ada Lovelace")
    page.select_option("#f-language", "es")
    _submit(page, ".profile-form button[type=submit]")
    page.wait_for_selector("html[lang=es]")
    assert page.inner_text("h1") == "Perfil" and page.input_value("#f-display_name") == "Ada Lovelace"
    _check(browser_page, "profile-es")
    page.goto(f"{base}/my")
    assert page.inner_text("h1") == "Mis cursos" and re.search(r"100\s*%", page.inner_text(".my-course .progress"))

    # the bad submissions above answered 422, which Chromium logs as a failed resource load; axe-core
    # clones elements (cloneNode) to describe them, and a clone of the <video> starts loading its src,
    # a MediaSource blob URL that hls.js has already revoked: that request of the clone fails, the
    # player is unaffected (it happens during assert_accessible only)
    browser_page.log.assert_clean(allow=[r"status of 422"])
