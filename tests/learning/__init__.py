"""Set-up for learning-activity tests on a running campus: a published course whose lessons
cover every kind, learners enrolled, and helpers to wait for the projections."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.api import PASSWORD, Person, course, login, person
from tests.media import make_clip, uploaded_video
from tests.support import ADMIN_PASSWORD, Campus


@dataclass
class Setup:
    admin: Person
    teacher: Person
    learners: list[Person]
    course: dict[str, Any]
    lessons: dict[str, str]  # text, text2, video, quiz -> lesson id
    quiz_id: str
    enrolments: list[str]  # one per learner


async def admin_of(c: httpx.AsyncClient) -> Person:
    tok = await login(c, "admin@test.example", ADMIN_PASSWORD)  # type: ignore[arg-type]
    h = {"authorization": f"Bearer {tok['access_token']}"}
    me = (await c.get("/api/v1/me", headers=h)).json()
    return Person(me["id"], me["email"], tok["access_token"], "admin")


async def setup(c: httpx.AsyncClient, learners: int = 2) -> Setup:
    root = await admin_of(c)
    teacher = await person(c, root, "instructor")  # type: ignore[arg-type]
    crs = await course(c, teacher, publish=False)  # type: ignore[arg-type]
    module = (await c.post(f"/api/v1/courses/{crs['id']}/modules", headers=teacher.h, json={"title": "Week 1"})).json()
    quiz = (
        await c.post(
            f"/api/v1/courses/{crs['id']}/quizzes",
            headers=teacher.h,
            json={"title": "Check", "questions": [{"kind": "single", "prompt": "2+2?", "options": ["4", "5"], "answer": 0, "points": 2}]},
        )
    ).json()
    video_id = await uploaded_video(c, teacher.h, crs["id"], make_clip(Path(tempfile.gettempdir()) / "lmsd-test-clip.mp4"))
    lessons = {}
    for key, body in (
        ("text", {"title": "Intro", "body": "# Hello"}),
        ("text2", {"title": "More", "body": "more"}),
        ("video", {"title": "Lecture", "kind": "video", "video_id": video_id}),
        ("quiz", {"title": "Quiz", "kind": "quiz", "quiz_id": quiz["id"]}),
    ):
        r = await c.post(f"/api/v1/modules/{module['id']}/lessons", headers=teacher.h, json=body)
        assert r.status_code == 201, r.text
        lessons[key] = r.json()["id"]
    published, people, enrolments = await publish_and_enrol(c, root, teacher, crs["id"], learners)
    return Setup(root, teacher, people, published | {"id": crs["id"]}, lessons, quiz["id"], enrolments)


async def publish_and_enrol(
    c: httpx.AsyncClient, root: Any, teacher: Any, course_id: str, learners: int
) -> tuple[dict[str, Any], list[Any], list[str]]:
    """Publish the course, then make ``learners`` learners and enrol each: (the published course
    as the PATCH answered it, the learners, their enrolment ids)."""
    r = await c.get(f"/api/v1/courses/{course_id}", headers=teacher.h)
    r = await c.patch(f"/api/v1/courses/{course_id}", headers={**teacher.h, "if-match": r.headers["etag"]}, json={"status": "published"})
    assert r.status_code == 200, r.text
    published: dict[str, Any] = r.json()
    people, enrolments = [], []
    for _ in range(learners):
        learner = await person(c, root, "learner")
        r = await c.post(f"/api/v1/courses/{course_id}/enrol", headers=learner.h)
        assert r.status_code == 201, r.text
        people.append(learner)
        enrolments.append(r.json()["id"])
    return published, people, enrolments


async def wait_progress(
    c: httpx.AsyncClient, who: Person, enrolment: str, until: Any, timeout: float = 30
) -> dict[str, Any]:
    """Poll the progress until ``until(progress)`` holds (projections are eventually consistent)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await c.get(f"/api/v1/enrolments/{enrolment}/progress", headers=who.h)
        assert r.status_code == 200, r.text
        last = r.json()
        if until(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"progress did not get there in {timeout}s: {json.dumps(last)[:2000]}")


def client(campus: Campus) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=campus.url, timeout=60)


__all__ = ["PASSWORD", "Setup", "admin_of", "client", "setup", "wait_progress"]


def learning_event(enrolment: str, kind: str, lesson: str, **extra: Any) -> dict[str, Any]:
    """One learning event as the API takes it."""
    return {"enrolment_id": enrolment, "type": kind, "lesson_id": lesson, **extra}
