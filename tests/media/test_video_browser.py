"""A course video from upload to adaptive playback with subtitles in a real Chromium, through the
whole running campus: the learner signs in on the portal, opens the video lesson's watch page,
the video plays (hls.js from npm, segments through the gateway with signed URLs), a subtitle cue
shows, and what was watched becomes progress of the enrolment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.api import PASSWORD
from tests.browser import sign_in
from tests.learning import client, setup, wait_progress
from tests.media import make_clip, uploaded_video, wait_video
from tests.support import Campus

if TYPE_CHECKING:
    from tests.browser import BrowserPage

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.slow

CUE = "Welcome to linear algebra."
TRANSCRIPT = f"WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n{CUE}\n\n00:00:05.000 --> 00:00:09.500\nToday: vectors and matrices.\n"


async def _prepare(campus: Campus, clip: Path) -> dict[str, Any]:
    async with client(campus) as c:
        s = await setup(c, learners=1)
        video_id = await uploaded_video(c, s.teacher.h, s.course["id"], clip, title="Vectors")
        await wait_video(c, s.teacher.h, video_id, lambda v: v["status"] == "ready", 300)
        # the transcript is the instructor's (automatic recognition is tested elsewhere): a known cue
        await wait_video(c, s.teacher.h, video_id, lambda v: v["transcript_status"] != "pending", 300)
        r = await c.put(f"/api/v1/videos/{video_id}/transcript", headers={**s.teacher.h, "content-type": "text/vtt"}, content=TRANSCRIPT)
        assert r.status_code == 200, r.text
        outline = (await c.get(f"/api/v1/courses/{s.course['id']}", headers=s.teacher.h)).json()
        lesson = (await c.post(
            f"/api/v1/modules/{outline['modules'][0]['id']}/lessons", headers=s.teacher.h,
            json={"title": "Vectors and matrices", "kind": "video", "video_id": video_id},
        )).json()
        return {"setup": s, "lesson": lesson["id"], "video": video_id}


async def _watched(campus: Campus, s: Any, lesson: str) -> int:
    async with client(campus) as c:
        p = await wait_progress(
            c, s.learners[0], s.enrolments[0],
            lambda p: any(x["lesson_id"] == lesson and x["watched_ms"] >= 2000 for x in p["lessons"]), timeout=60,
        )
        return int(next(x for x in p["lessons"] if x["lesson_id"] == lesson)["watched_ms"])


def test_learner_watches_a_lecture_with_subtitles_in_chromium(
    browser_campus: Campus, browser_page: BrowserPage, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "lecture.mp4", 10.0, "640x360")
    made = _run(_prepare(browser_campus, clip))
    s = made["setup"]
    page, base = browser_page.page, browser_campus.url.rstrip("/")
    sign_in(page, base, s.learners[0].email, PASSWORD)
    response = page.goto(f"{base}/watch/{made['lesson']}")
    assert response is not None and response.status == 200
    assert "unsafe-inline" not in (response.headers.get("content-security-policy") or "").split("style-src")[0]
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
    levels = page.evaluate("() => window.lmsdPlayers[0].hls.levels.map(l => l.height)")
    assert sorted(levels) == [240, 360]
    browser_page.screenshot("video-lesson-playing")
    page.evaluate("() => document.querySelector('video').pause()")  # sends the watched ranges
    assert _watched_ms(browser_campus, s, made["lesson"]) >= 2000
    browser_page.log.assert_clean()
    # a lesson that is not there (another campus's id looks the same) shows a 404 page, not data
    missing = page.goto(f"{base}/watch/{uuid.uuid4()}")
    assert missing is not None and missing.status == 404


def _watched_ms(campus: Campus, s: Any, lesson: str) -> int:
    return int(_run(_watched(campus, s, lesson)))


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run async set-up from this sync test (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
