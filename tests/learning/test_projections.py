"""The learning projections (lmsd/learning/projections.py) applied to the events the services
record, on the real database in a rolled-back transaction: progress, lesson completion by a
graded quiz, course completion, grades, xAPI facts; the same tables whatever the batching and
order; another campus's events touch nothing here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.contracts.v1 import learning_pb2
from lmsd.contracts.v1.envelope_pb2 import Event
from lmsd.events import outbox
from lmsd.events.consumers import Delivered
from lmsd.events.envelope import NewEvent, micros
from lmsd.learning import projections
from lmsd.learning import service as learning
from lmsd.learning.schemas import ActivityBatch, ActivityIn
from lmsd.policy import Identity
from lmsd.quizzes import service as quizzes
from tests import factories as make

BASE_URL = "https://a.example"


def _delivered(events: list[Event]) -> list[Delivered]:
    return [Delivered(e, n + 1) for n, e in enumerate(events)]


async def _apply(db: AsyncSession, events: list[Event], *, live: bool = True) -> list[NewEvent]:
    conn = await outbox.driver_connection(db)
    return await projections.projections(BASE_URL)["learning"].apply(conn, _delivered(events), live=live)


async def _activity(db: AsyncSession, learner: Identity, enrolment: uuid.UUID, *items: tuple[str, uuid.UUID, datetime]) -> None:
    batch = ActivityBatch(events=[ActivityIn(enrolment_id=enrolment, type=t, lesson_id=lesson, occurred_at=at) for t, lesson, at in items])  # type: ignore[arg-type]
    await learning.record_activity(db, learner, batch, max_batch=100)


async def _tables(db: AsyncSession, campus_id: uuid.UUID, enrolment: uuid.UUID) -> dict[str, Any]:
    conn = await outbox.driver_connection(db)
    key = (campus_id, enrolment)
    progress = await conn.fetchrow("SELECT * FROM progress WHERE campus_id = $1 AND enrolment_id = $2", *key)
    lessons = await conn.fetch(
        "SELECT lesson_id, started_at, completed_at, watched_ms FROM lesson_progress "
        "WHERE campus_id = $1 AND enrolment_id = $2 ORDER BY lesson_id", *key,
    )
    grades = await conn.fetch(
        "SELECT quiz_id, attempts, best_score, max_score, last_graded_at FROM grades "
        "WHERE campus_id = $1 AND enrolment_id = $2 ORDER BY quiz_id", *key,
    )
    return {
        "progress": dict(progress) if progress else None,
        "lessons": [dict(r) for r in lessons],
        "grades": [dict(r) for r in grades],
    }


async def _forget(db: AsyncSession, campus_id: uuid.UUID, enrolment: uuid.UUID) -> None:
    conn = await outbox.driver_connection(db)
    for table in ("progress", "lesson_progress", "grades"):
        await conn.execute(f"DELETE FROM {table} WHERE campus_id = $1 AND enrolment_id = $2", campus_id, enrolment)


async def test_activity_and_a_graded_quiz_complete_lessons_and_the_course(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher, lessons=2)
    quiz = await make.quiz(db, teacher, tree)  # the course's third lesson
    enrolment = (await make.enrolment(db, learner, tree)).id
    first, second = tree.lessons[0].id, tree.lessons[1].id
    t0 = datetime.now(UTC) - timedelta(hours=1)
    await _activity(db, learner, enrolment, ("lesson_started", first, t0), ("lesson_completed", first, t0 + timedelta(minutes=5)),
                    ("lesson_completed", first, t0 + timedelta(minutes=6)),  # twice counts once
                    ("lesson_started", second, t0 + timedelta(minutes=7)), ("lesson_completed", second, t0 + timedelta(minutes=9)))
    await quizzes.submit_attempt(db, learner, quiz.id, quiz.answers(make.WRONG))
    await quizzes.submit_attempt(db, learner, quiz.id, quiz.answers(make.RIGHT))
    events = await make.recorded(db, enrolment)

    # everything but the attempts: two lessons of three, nothing completes the course
    assert await _apply(db, events[:-4]) == []
    ahead = await learning.progress(db, learner, enrolment)
    assert (ahead.lessons_total, ahead.lessons_started, ahead.lessons_completed) == (3, 2, 2)
    # the first graded attempt, wrong as it was, completes the quiz's lesson: the course is done
    follow_ups = await _apply(db, events[-4:])
    assert [f.body for f in follow_ups] == ["course_completed"]
    done = follow_ups[0]
    assert done.aggregate_id == enrolment and done.actor_id == learner.user_id
    assert done.message.lessons_completed == 3 and done.message.course_id == str(tree.id)
    # a course_completed event with a deterministic id: the live projector and a replay agree
    assert done.event_id == uuid.uuid5(projections.COMPLETION_NS, f"{enrolment}:3")

    seen = await learning.progress(db, learner, enrolment)
    assert (seen.lessons_completed, seen.quiz_attempts, seen.events_applied) == (3, 2, len(events))
    assert quiz.lesson is not None and seen.last_lesson_id == quiz.lesson.id  # the latest activity
    assert [(g.quiz_id, g.attempts, g.best_score, g.max_score) for g in seen.grades] == [(quiz.id, 2, 4.0, 4.0)]
    completed = {lp.lesson_id: lp.completed_at for lp in seen.lessons}
    assert completed[first] == t0 + timedelta(minutes=5)  # the first completion's time
    # course_completed applied (not live: a replay makes no follow-ups) sets completed_at
    await _apply(db, [done.envelope(len(events) + 1, micros(None))], live=False)
    assert (await learning.progress(db, learner, enrolment)).completed_at is not None

    # xAPI: one statement per event, the learner's
    count = await (await outbox.driver_connection(db)).fetchval(
        "SELECT count(*) FROM xapi_statements WHERE campus_id = $1 AND user_id = $2", admin.campus_id, learner.user_id
    )
    assert count == len(events) + 1


async def test_the_tables_are_the_same_whatever_the_batches_and_their_order(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher, lessons=3)
    quiz = await make.quiz(db, teacher, tree)
    enrolment = (await make.enrolment(db, learner, tree)).id
    t0 = datetime.now(UTC) - timedelta(hours=2)
    lesson = tree.lessons[0].id
    await _activity(db, learner, enrolment, *[("lesson_started", tree.lessons[n].id, t0 + timedelta(minutes=n)) for n in range(3)],
                    ("lesson_completed", tree.lessons[1].id, t0 + timedelta(minutes=10)))
    for answers in (make.WRONG, make.RIGHT, make.WRONG):
        await quizzes.submit_attempt(db, learner, quiz.id, quiz.answers(answers))
    events = await make.recorded(db, enrolment)
    # watched ranges that overlap, sent in two events: their union counts (10 s + 5 s, not 20 s)
    for n, segments in enumerate([[(0, 10_000)], [(5_000, 15_000)]]):
        watched = NewEvent(admin.campus_id, enrolment, "video_watched", learning_pb2.VideoWatched(
            course_id=str(tree.id), lesson_id=str(lesson),
            segments=[learning_pb2.Segment(start_ms=s, end_ms=e) for s, e in segments]),
            actor_id=learner.user_id, occurred_at=t0 + timedelta(minutes=20 + n))
        events.append(watched.envelope(len(events) + 1, micros(None)))

    await _apply(db, events)
    once = await _tables(db, admin.campus_id, enrolment)
    assert once["progress"]["watched_ms"] == 15_000 and once["progress"]["lessons_started"] == 3
    assert once["grades"][0]["attempts"] == 3 and once["grades"][0]["best_score"] == 4.0
    await _forget(db, admin.campus_id, enrolment)
    for event in reversed(events):  # one at a time, last first
        await _apply(db, [event])
    assert await _tables(db, admin.campus_id, enrolment) == once


async def test_another_campus_events_touch_nothing_here(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    teacher = await make.user(db, admin, "instructor")
    learner = await make.user(db, admin)
    tree = await make.course(db, teacher)
    enrolment = (await make.enrolment(db, learner, tree)).id
    before = await _tables(db, admin.campus_id, enrolment)
    await _apply(db, await make.recorded(db, enrolment))
    mine = await _tables(db, admin.campus_id, enrolment)
    assert mine != before and mine["progress"]["events"] == 1

    # the same enrolment id and lesson on another campus: its own rows, ours unchanged
    other = await make.campus(db)
    stranger = NewEvent(other.campus_id, enrolment, "lesson_completed",
                        learning_pb2.LessonCompleted(course_id=str(tree.id), lesson_id=str(tree.lessons[0].id)),
                        actor_id=other.user_id)
    assert await _apply(db, [stranger.envelope(1, micros(None))]) == []
    assert await _tables(db, admin.campus_id, enrolment) == mine
    theirs = await _tables(db, other.campus_id, enrolment)
    assert theirs["progress"]["lessons_completed"] == 1 and theirs["progress"]["user_id"] == other.user_id
