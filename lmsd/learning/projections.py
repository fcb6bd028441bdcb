"""The projections of learning activity: progress, gradebook, xAPI statements.

Each is a pure function of the set of events it has seen: counts come from per-lesson state
(a lesson completed twice counts once), watched time from the union of watched ranges, "last
activity" from the greatest (occurred_at, lesson id). So the tables are the same whatever the
order of delivery, and a replay from the stream gives back the live tables exactly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from lmsd.contracts.v1 import learning_pb2
from lmsd.events.consumers import Delivered, Projection
from lmsd.events.envelope import NewEvent, from_micros
from lmsd.learning import xapi

COMPLETION_NS = uuid.UUID("5b0d7a52-8f8e-4b8e-9a57-6c6d73640001")


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted((s, e) for s, e in ranges if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _min(a: int | None, b: int) -> int:
    return b if a is None or b < a else a


def _timestamptz(micros: str) -> str:
    """SQL for a time given as microseconds since the epoch (the unit events carry), exactly."""
    return f"'epoch'::timestamptz + {micros} * interval '1 microsecond'"


def _micros(column: str) -> str:
    """SQL for a stored time as microseconds since the epoch, exactly."""
    return f"(extract(epoch from {column}) * 1000000)::bigint"


_LESSON_EVENTS = ("lesson_started", "lesson_completed", "video_watched")


def lesson_of(kind: str, msg: Any) -> str | None:
    """The lesson an event is about: lesson events, and a graded attempt at a lesson's quiz,
    which completes that lesson whatever the entry point (its lesson_id is "" when the quiz is
    in no lesson). The Rust projector's ``lesson_of`` is the same rule."""
    if kind in _LESSON_EVENTS or (kind == "quiz_attempt_graded" and msg.lesson_id):
        return str(msg.lesson_id)
    return None


class _Uuids(dict[str, uuid.UUID]):
    """UUIDs parsed once per batch (a batch repeats its campus, enrolments and lessons)."""

    def __missing__(self, text: str) -> uuid.UUID:
        value = self[text] = uuid.UUID(text)
        return value


@dataclass
class _Progress:
    course_id: uuid.UUID
    user_id: uuid.UUID
    events: int = 0
    lessons_started: int = 0
    lessons_completed: int = 0
    watched_ms: int = 0
    quiz_attempts: int = 0
    last_lesson_id: uuid.UUID | None = None
    last_activity_at: int | None = None  # microseconds, like the events
    completed_at: int | None = None


@dataclass
class _Lesson:
    started_at: int | None = None
    completed_at: int | None = None
    watched: list[list[int]] | None = None
    watched_ms: int = 0


_P_COLS = ("course_id", "user_id", "events", "lessons_started", "lessons_completed", "watched_ms",
           "quiz_attempts", "last_lesson_id", "last_activity_at", "completed_at")
_P_TIMES = ("last_activity_at", "completed_at")  # microseconds in Python, timestamptz in the table
# `campus_id = ANY($1)` as in the Rust projector (rust/projector/src/store/sql.rs): a filter Citus prunes by
_SELECT_PROGRESS = f"""
SELECT p.campus_id, p.enrolment_id, {', '.join(_micros(f'p.{c}') + f' AS {c}' if c in _P_TIMES else c for c in _P_COLS)}
FROM progress p JOIN unnest($1::uuid[], $2::uuid[]) AS k(c, e) ON p.campus_id = k.c AND p.enrolment_id = k.e
WHERE p.campus_id = ANY($1)
"""
_UPSERT_PROGRESS = f"""
INSERT INTO progress (campus_id, enrolment_id, {', '.join(_P_COLS)})
SELECT c, e, {', '.join(_timestamptz(c) if c in _P_TIMES else c for c in _P_COLS)}
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::int[], $7::int[],
            $8::bigint[], $9::int[], $10::uuid[], $11::bigint[], $12::bigint[]) AS u(c, e, {', '.join(_P_COLS)})
ON CONFLICT (campus_id, enrolment_id) DO UPDATE SET
  {', '.join(f'{c} = excluded.{c}' for c in _P_COLS)}
"""
_SELECT_LESSONS = f"""
SELECT l.campus_id, l.enrolment_id, l.lesson_id, {_micros('l.started_at')} AS started_at,
       {_micros('l.completed_at')} AS completed_at, l.watched, l.watched_ms
FROM lesson_progress l JOIN unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS k(c, e, i)
  ON l.campus_id = k.c AND l.enrolment_id = k.e AND l.lesson_id = k.i
WHERE l.campus_id = ANY($1)
"""
_UPSERT_LESSONS = f"""
INSERT INTO lesson_progress (campus_id, enrolment_id, lesson_id, started_at, completed_at, watched, watched_ms)
SELECT c, e, l, {_timestamptz('s')}, {_timestamptz('d')}, w::jsonb, m
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[]) AS u(c, e, l, s, d, w, m)
ON CONFLICT (campus_id, enrolment_id, lesson_id) DO UPDATE SET started_at = excluded.started_at,
  completed_at = excluded.completed_at, watched = excluded.watched, watched_ms = excluded.watched_ms
"""


class ProgressProjection:
    name: str = "progress"
    tables: tuple[str, ...] = ("progress", "lesson_progress")

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        ids = _Uuids()
        keys = list({(ids[d.event.campus_id], ids[d.event.aggregate_id]) for d in events})
        progress: dict[tuple[uuid.UUID, uuid.UUID], _Progress] = {}
        for r in await conn.fetch(_SELECT_PROGRESS, [k[0] for k in keys], [k[1] for k in keys]):
            progress[(r["campus_id"], r["enrolment_id"])] = _Progress(**{c: r[c] for c in _P_COLS})
        lesson_keys = {
            (ids[d.event.campus_id], ids[d.event.aggregate_id], ids[of])
            for d in events
            if (kind := d.event.WhichOneof("body") or "") and (of := lesson_of(kind, getattr(d.event, kind)))
        }
        lk = list(lesson_keys)
        lessons: dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID], _Lesson] = {}
        if lk:
            for r in await conn.fetch(_SELECT_LESSONS, [k[0] for k in lk], [k[1] for k in lk], [k[2] for k in lk]):
                lessons[(r["campus_id"], r["enrolment_id"], r["lesson_id"])] = _Lesson(
                    r["started_at"], r["completed_at"], r["watched"], r["watched_ms"]
                )
        before_completed = {k: p.lessons_completed for k, p in progress.items()}
        touched_lessons: set[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = set()
        for d in events:
            ev = d.event
            body = ev.WhichOneof("body") or ""
            msg: Any = getattr(ev, body)
            key = (ids[ev.campus_id], ids[ev.aggregate_id])
            p = progress.get(key)
            if p is None or body == "enrolment_created":
                user_id = msg.user_id if body in ("enrolment_created", "enrolment_withdrawn") else ev.actor_id
                user = ids[user_id] if user_id else None
                if p is None:
                    p = progress[key] = _Progress(ids[msg.course_id], user or uuid.UUID(int=0))
                    before_completed.setdefault(key, 0)
                elif user is not None:
                    p.user_id = user
            p.events += 1
            at = ev.occurred_at_us
            lesson_text = lesson_of(body, msg)
            if lesson_text is not None:
                lesson_id = ids[lesson_text]
                lkey = (key[0], key[1], lesson_id)
                lesson = lessons.get(lkey)
                if lesson is None:
                    lesson = lessons[lkey] = _Lesson()
                touched_lessons.add(lkey)
                if body == "lesson_started":
                    if lesson.started_at is None:
                        p.lessons_started += 1
                    lesson.started_at = _min(lesson.started_at, at)
                elif body in ("lesson_completed", "quiz_attempt_graded"):  # a graded attempt completes its lesson
                    if lesson.completed_at is None:
                        p.lessons_completed += 1
                    lesson.completed_at = _min(lesson.completed_at, at)
                else:
                    old = lesson.watched_ms
                    lesson.watched = merge_ranges(
                        [*((r[0], r[1]) for r in (lesson.watched or [])), *((s.start_ms, s.end_ms) for s in msg.segments)]
                    )
                    lesson.watched_ms = sum(e - s for s, e in lesson.watched)
                    p.watched_ms += lesson.watched_ms - old
                # last activity: the greatest (time, lesson id as text)
                last = p.last_activity_at
                if last is None or at > last or (at == last and str(lesson_id) > str(p.last_lesson_id)):
                    p.last_activity_at, p.last_lesson_id = at, lesson_id
            elif body == "quiz_attempt_submitted":
                p.quiz_attempts += 1
            elif body == "course_completed":
                p.completed_at = _min(p.completed_at, at)
        items = list(progress.items())
        await conn.execute(
            _UPSERT_PROGRESS,
            [k[0] for k, _ in items], [k[1] for k, _ in items],
            *([getattr(p, c) for _, p in items] for c in _P_COLS),
        )
        if touched_lessons:
            tl = [(k, lessons[k]) for k in touched_lessons]
            await conn.execute(
                _UPSERT_LESSONS,
                [k[0] for k, _ in tl], [k[1] for k, _ in tl], [k[2] for k, _ in tl],
                [v.started_at for _, v in tl], [v.completed_at for _, v in tl],
                [json.dumps(v.watched or []) for _, v in tl], [v.watched_ms for _, v in tl],
            )
        if not live:
            return []
        return await self._completions(conn, progress, before_completed)

    async def _completions(
        self,
        conn: asyncpg.Connection,
        progress: dict[tuple[uuid.UUID, uuid.UUID], _Progress],
        before: dict[tuple[uuid.UUID, uuid.UUID], int],
    ) -> list[NewEvent]:
        """A learner who has just completed every lesson of the course completes the course."""
        grew = {k: p for k, p in progress.items() if p.lessons_completed > before.get(k, 0)}
        if not grew:
            return []
        courses = list({(k[0], p.course_id) for k, p in grew.items()})
        totals = {
            (r["campus_id"], r["course_id"]): int(r["n"])
            for r in await conn.fetch(
                "SELECT l.campus_id, l.course_id, count(*) AS n FROM lessons l "
                "JOIN unnest($1::uuid[], $2::uuid[]) AS k(c, i) ON l.campus_id = k.c AND l.course_id = k.i "
                "WHERE l.campus_id = ANY($1) GROUP BY l.campus_id, l.course_id",
                [c[0] for c in courses], [c[1] for c in courses],
            )
        }
        out = []
        for key, p in grew.items():
            total = totals.get((key[0], p.course_id), 0)
            if total and before.get(key, 0) < total <= p.lessons_completed:
                out.append(
                    NewEvent(
                        campus_id=key[0],
                        aggregate_id=key[1],
                        body="course_completed",
                        message=learning_pb2.CourseCompleted(course_id=str(p.course_id), lessons_completed=total),
                        actor_id=p.user_id,
                        occurred_at=from_micros(p.last_activity_at) if p.last_activity_at is not None else None,
                        event_id=uuid.uuid5(COMPLETION_NS, f"{key[1]}:{total}"),
                    )
                )
        return out


_UPSERT_GRADES = """
INSERT INTO grades AS g (campus_id, enrolment_id, quiz_id, course_id, user_id, attempts, best_score, max_score,
                         last_graded_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int[], $7::float8[],
                     $8::float8[], $9::timestamptz[])
ON CONFLICT (campus_id, enrolment_id, quiz_id) DO UPDATE SET
  attempts = g.attempts + excluded.attempts,
  best_score = greatest(g.best_score, excluded.best_score),
  max_score = greatest(g.max_score, excluded.max_score),
  last_graded_at = greatest(g.last_graded_at, excluded.last_graded_at)
"""


class GradebookProjection:
    name: str = "gradebook"
    tables: tuple[str, ...] = ("grades",)

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        rows: dict[tuple[uuid.UUID, uuid.UUID, uuid.UUID], list[Any]] = {}
        for d in events:
            ev = d.event
            if ev.WhichOneof("body") != "quiz_attempt_graded":
                continue
            g = ev.quiz_attempt_graded
            key = (uuid.UUID(ev.campus_id), uuid.UUID(ev.aggregate_id), uuid.UUID(g.quiz_id))
            at = from_micros(ev.occurred_at_us)
            row = rows.get(key)
            if row is None:
                rows[key] = [uuid.UUID(g.course_id), uuid.UUID(ev.actor_id), 1, g.score, g.max_score, at]
            else:
                row[2] += 1
                row[3], row[4], row[5] = max(row[3], g.score), max(row[4], g.max_score), max(row[5], at)
        if rows:
            items = list(rows.items())
            await conn.execute(
                _UPSERT_GRADES,
                [k[0] for k, _ in items], [k[1] for k, _ in items], [k[2] for k, _ in items],
                *([v[i] for _, v in items] for i in range(6)),
            )
        return []


_INSERT_STATEMENTS = f"""
INSERT INTO xapi_statements (campus_id, id, user_id, course_id, verb, activity, "timestamp", stored, event)
SELECT c, i, u, k, v, a, {_timestamptz('t')}, {_timestamptz('s')}, e
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::bigint[],
  $8::bigint[], $9::bytea[]) AS x(c, i, u, k, v, a, t, s, e)
ON CONFLICT DO NOTHING
"""


class XapiProjection:
    """The filterable facts of each statement plus its event; statements are built when read."""

    name: str = "xapi"
    tables: tuple[str, ...] = ("xapi_statements",)

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        rows = [xapi.facts(d.event, self.base_url) for d in events]
        if rows:
            await conn.execute(
                _INSERT_STATEMENTS,
                [r.campus_id for r in rows], [r.id for r in rows], [r.user_id for r in rows],
                [r.course_id for r in rows], [r.verb for r in rows], [r.activity for r in rows],
                [r.timestamp_us for r in rows], [r.stored_us for r in rows], [d.data or d.event.SerializeToString() for d in events],
            )
        return []


class Together:
    """Several projections applied as one: same batch, same transaction."""

    def __init__(self, name: str, parts: list[Projection]) -> None:
        self.name = name
        self.parts = parts
        self.tables: tuple[str, ...] = tuple(t for p in parts for t in p.tables)

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        follow_ups: list[NewEvent] = []
        for part in self.parts:
            follow_ups += await part.apply(conn, events, live=live)
        return follow_ups


# projection -> the durable consumer that keeps it live (lmsd.events.streams.CONSUMERS)
CONSUMER_OF = {"progress": "learning", "gradebook": "learning", "xapi": "learning", "learning": "learning"}


def projections(base_url: str) -> dict[str, Projection]:
    parts: list[Projection] = [ProgressProjection(), GradebookProjection(), XapiProjection(base_url)]
    found: dict[str, Projection] = {p.name: p for p in parts}
    found["learning"] = Together("learning", parts)
    return found
