"""Recording learning activity (into the outbox) and reading its projections."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination, policy
from lmsd.contracts.v1 import learning_pb2
from lmsd.courses.service import relations
from lmsd.db import values
from lmsd.errors import Conflict, Invalid, NotFound
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent, decode, new_ids, text
from lmsd.learning import xapi
from lmsd.learning.schemas import (
    ActivityAccepted,
    ActivityBatch,
    EnrolmentVersion,
    GradeOut,
    LessonProgressOut,
    ProgressOut,
    StatementPage,
)
from lmsd.policy import Identity

FUTURE_SLACK = timedelta(minutes=5)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CLAIM_ROW = "($::uuid, $::uuid, $::uuid)"  # client_events: campus, client id, enrolment


async def record_activity(session: AsyncSession, actor: Identity, batch: ActivityBatch, max_batch: int) -> ActivityAccepted:
    """Validate a batch of the actor's own learning events and put them in the outbox, in one
    transaction with nothing else. All or nothing: one bad event refuses the batch.

    An event with a client ``id`` is recorded under that event id once: an id seen before (in
    ``client_events``, kept after the outbox forgets published events) is skipped and counted
    in ``duplicates``, so a client may send a batch again when it did not get the answer."""
    if len(batch.events) > max_batch:
        raise Invalid(f"at most {max_batch} events per request (got {len(batch.events)})", field="events", code="activity.batch_too_large")
    conn = await outbox.driver_connection(session)
    enrolment_ids = list({e.enrolment_id for e in batch.events})
    enrolments = {
        r["id"]: r
        for r in await conn.fetch(
            "SELECT id, course_id, user_id, status FROM enrolments WHERE campus_id = $1 AND id = ANY($2::uuid[])",
            actor.campus_id, enrolment_ids,
        )
    }
    for eid in enrolment_ids:
        row = enrolments.get(eid)
        # another learner's enrolment is not found, like another campus's (no existence leak)
        if row is None or not policy.allowed(actor, "activity.record", policy.Relations(self_target=row["user_id"] == actor.user_id)):
            raise NotFound(f"no such enrolment {eid}")
        if row["status"] != "active":
            raise Conflict(f"enrolment {eid} is {row['status']}: activity is recorded for active enrolments only", code="enrolment.not_active")
    unknown = set(batch.expected_versions) - set(enrolment_ids)
    if unknown:
        raise Invalid(f"expected_versions names an enrolment without events in this batch: {sorted(map(str, unknown))[0]}", field="expected_versions")
    lessons = {
        r["id"]: r
        for r in await conn.fetch(
            "SELECT id, course_id, kind, video_id FROM lessons WHERE campus_id = $1 AND id = ANY($2::uuid[])",
            actor.campus_id, list({e.lesson_id for e in batch.events}),
        )
    }
    now = datetime.now(UTC)
    events: list[NewEvent] = []
    ids = new_ids(len(batch.events))
    for index, item in enumerate(batch.events):
        where = f"events[{index}]"
        enrolment = enrolments[item.enrolment_id]
        lesson = lessons.get(item.lesson_id)
        if lesson is None or lesson["course_id"] != enrolment["course_id"]:
            raise Invalid(f"{where}: lesson {item.lesson_id} is not part of the enrolment's course", field="lesson_id", code="activity.lesson_not_in_course")
        occurred = item.occurred_at or now
        if occurred.tzinfo is None:
            raise Invalid(f"{where}: occurred_at needs a time zone (e.g. 2026-11-25T10:00:00Z)", field="occurred_at")
        if not EARLIEST <= occurred <= now + FUTURE_SLACK:
            raise Invalid(f"{where}: occurred_at {occurred.isoformat()} is in the future or before 2000", field="occurred_at")
        course, lesson_id = text(enrolment["course_id"]), text(item.lesson_id)
        message: Any
        if item.type == "video_watched":
            if lesson["kind"] != "video":
                raise Invalid(f"{where}: video_watched on lesson {item.lesson_id}, which is not a video lesson", field="type")
            if not item.segments:
                raise Invalid(f"{where}: video_watched needs at least one [start_ms, end_ms] segment", field="segments")
            bad = [s for s in item.segments if s[0] >= s[1]]
            if bad:
                raise Invalid(f"{where}: segment {list(bad[0])} does not end after it starts", field="segments")
            message = learning_pb2.VideoWatched(
                course_id=course, lesson_id=lesson_id, video_id=text(lesson["video_id"]) if lesson["video_id"] else "",
                segments=[learning_pb2.Segment(start_ms=s, end_ms=e) for s, e in item.segments],
            )
        else:
            if item.segments:
                raise Invalid(f"{where}: segments belong to video_watched events only", field="segments")
            cls = learning_pb2.LessonStarted if item.type == "lesson_started" else learning_pb2.LessonCompleted
            message = cls(course_id=course, lesson_id=lesson_id)
        events.append(
            NewEvent(
                actor.campus_id, item.enrolment_id, item.type, message, actor_id=actor.user_id, occurred_at=occurred,
                event_id=ids[index] if item.id is None else item.id,
            )
        )
    fresh = await _first_time(conn, actor.campus_id, batch, events)
    expected = {(actor.campus_id, "enrolment", eid): v for eid, v in batch.expected_versions.items()}
    versions = await outbox.append(conn, fresh, expected)
    return ActivityAccepted(
        accepted=len(fresh),
        enrolments=[
            EnrolmentVersion(key[2], version) for key, version in sorted(versions.items(), key=lambda kv: str(kv[0][2]))
        ],
        duplicates=len(events) - len(fresh),
    )


async def _first_time(conn: Any, campus_id: uuid.UUID, batch: ActivityBatch, events: list[NewEvent]) -> list[NewEvent]:
    """The events to record: those without a client id, and those whose client id this campus
    has not recorded yet (claimed in ``client_events`` in the caller's transaction: a concurrent
    request with the same id waits for this one and then finds it taken)."""
    claimed = [(e, item.id) for e, item in zip(events, batch.events, strict=True) if item.id is not None]
    if not claimed:
        return events
    enrolment_of = {cid: e.aggregate_id for e, cid in reversed(claimed)}  # first event of each id
    # in id order: concurrent requests lock shared ids in one order; a few as VALUES, one phase
    # on Citus (lmsd.db.values)
    rows, params = values.source(_CLAIM_ROW, [(campus_id, i, enrolment_of[i]) for i in sorted(enrolment_of)])
    new = {
        r["id"]
        for r in await conn.fetch(
            f"INSERT INTO client_events (campus_id, id, enrolment_id) {rows} ON CONFLICT (campus_id, id) DO NOTHING RETURNING id",
            *params,
        )
    }
    if new:  # an id of an event the server made (still in the outbox) is not the client's to reuse
        new -= {r["id"] for r in await conn.fetch(
            "SELECT id FROM outbox WHERE campus_id = $1 AND id = ANY($2::uuid[])", campus_id, list(new),
        )}
    fresh, seen = [], set()
    for event, item in zip(events, batch.events, strict=True):
        if item.id is None:
            fresh.append(event)
        elif item.id in new and item.id not in seen:
            seen.add(item.id)
            fresh.append(event)
    return fresh


async def progress(session: AsyncSession, actor: Identity, enrolment_id: uuid.UUID) -> ProgressOut:
    conn = await outbox.driver_connection(session)
    enrolment = await conn.fetchrow(
        "SELECT id, course_id, user_id FROM enrolments WHERE campus_id = $1 AND id = $2", actor.campus_id, enrolment_id
    )
    if enrolment is None:
        raise NotFound("no such enrolment")
    rel = await relations(session, actor, enrolment["course_id"])
    rel = policy.Relations(rel.course_instructor, rel.enrolled, self_target=enrolment["user_id"] == actor.user_id)
    if not policy.allowed(actor, "progress.read", rel):
        raise NotFound("no such enrolment")
    key = (actor.campus_id, enrolment_id)
    row = await conn.fetchrow("SELECT * FROM progress WHERE campus_id = $1 AND enrolment_id = $2", *key)
    version = await conn.fetchval(
        "SELECT version FROM event_aggregates WHERE campus_id = $1 AND aggregate = 'enrolment' AND aggregate_id = $2", *key
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM lessons WHERE campus_id = $1 AND course_id = $2", actor.campus_id, enrolment["course_id"]
    )
    lessons = await conn.fetch(
        "SELECT * FROM lesson_progress WHERE campus_id = $1 AND enrolment_id = $2 ORDER BY lesson_id", *key
    )
    grades = await conn.fetch("SELECT * FROM grades WHERE campus_id = $1 AND enrolment_id = $2 ORDER BY quiz_id", *key)

    def col(name: str, default: Any = 0) -> Any:
        return row[name] if row is not None else default

    return ProgressOut(
        enrolment_id=enrolment_id,
        course_id=enrolment["course_id"],
        user_id=enrolment["user_id"],
        version=int(version or 0),
        events_applied=int(col("events")),
        lessons_total=int(total or 0),
        lessons_started=int(col("lessons_started")),
        lessons_completed=int(col("lessons_completed")),
        watched_ms=int(col("watched_ms")),
        quiz_attempts=int(col("quiz_attempts")),
        last_lesson_id=col("last_lesson_id", None),
        last_activity_at=col("last_activity_at", None),
        completed_at=col("completed_at", None),
        lessons=[
            LessonProgressOut(r["lesson_id"], r["started_at"], r["completed_at"], int(r["watched_ms"]), r["watched"])
            for r in lessons
        ],
        grades=[GradeOut(r["quiz_id"], int(r["attempts"]), float(r["best_score"]), float(r["max_score"])) for r in grades],
    )


async def statements(
    session: AsyncSession,
    actor: Identity,
    *,
    agent: uuid.UUID | None,
    verb: str | None,
    activity: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    ascending: bool,
    cursor: str | None,
    base_url: str,
) -> StatementPage:
    """xAPI statements, newest stored first (``ascending`` for oldest first), as an LRS pages them.
    Admins see the campus; instructors their own and their courses'; learners their own."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"{name} needs a time zone (e.g. 2026-11-25T10:00:00Z)", field=name)
    conn = await outbox.driver_connection(session)
    where = ["campus_id = $1"]
    args: list[Any] = [actor.campus_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if not policy.allowed(actor, "xapi.read_campus"):
        me = arg(actor.user_id)
        where.append(
            f"(user_id = {me} OR course_id IN (SELECT course_id FROM course_instructors "
            f"WHERE campus_id = $1 AND user_id = {me}))"
        )
    if agent is not None:
        where.append(f"user_id = {arg(agent)}")
    if verb:
        where.append(f"verb = {arg(verb)}")
    if activity:
        where.append(f"activity = {arg(activity)}")
    if since is not None:
        where.append(f"stored > {arg(since)}")
    if until is not None:
        where.append(f"stored <= {arg(until)}")
    if cursor:
        stored, sid = pagination.decode_at(cursor)
        where.append(f"(stored, id) {'>' if ascending else '<'} ({arg(stored)}, {arg(sid)})")
    order = "ASC" if ascending else "DESC"
    rows = await conn.fetch(
        f"SELECT id, stored, event FROM xapi_statements WHERE {' AND '.join(where)} "
        f"ORDER BY stored {order}, id {order} LIMIT {arg(limit + 1)}",
        *args,
    )
    more = ""
    if len(rows) > limit:
        last = rows[limit - 1]
        query = {k: v for k, v in {
            "agent": agent, "verb": verb, "activity": activity, "since": since and since.isoformat(),
            "until": until and until.isoformat(), "limit": limit, "ascending": str(ascending).lower(),
        }.items() if v is not None}
        more = "/api/v1/xapi/statements?" + urlencode({**query, "cursor": pagination.encode_at(last["stored"], last["id"])})
    return StatementPage([xapi.statement(decode(r["event"]), base_url) for r in rows[:limit]], more)
