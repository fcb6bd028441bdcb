"""The outbox's append (lmsd.events.outbox) and the multi-row VALUES it writes with
(lmsd.db.values), on the session-wide database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.contracts.v1 import learning_pb2
from lmsd.contracts.v1.envelope_pb2 import Event
from lmsd.db import values
from lmsd.errors import Conflict
from lmsd.events import outbox
from lmsd.events.envelope import NewEvent
from tests import factories as make


def test_rows_are_numbered_row_after_row() -> None:
    assert values.rows_sql("($::uuid, $)", 2) == "($1::uuid, $2), ($3::uuid, $4)"
    assert values.rows_sql("($, 'enrolment', $::bigint)", 1) == "($1, 'enrolment', $2::bigint)"


def test_chunks_keep_whole_rows_within_the_parameter_limit() -> None:
    rows = [(n, n, n) for n in range(25_000)]
    parts = list(values.chunks(rows))
    assert [n for n, _ in parts] == [10_922, 10_922, 3_156]
    assert all(len(flat) == 3 * n <= values.MAX_PARAMETERS for n, flat in parts)
    assert [v for _, flat in parts for v in flat[::3]] == list(range(25_000))
    assert list(values.chunks([])) == []


def _started(campus: uuid.UUID, enrolment: uuid.UUID, n: int) -> NewEvent:
    lesson = str(uuid.UUID(int=n))
    return NewEvent(campus, enrolment, "lesson_started", learning_pb2.LessonStarted(course_id=lesson, lesson_id=lesson))


async def test_append_numbers_each_aggregate_in_order_across_statements(db: AsyncSession) -> None:
    """6,000 events of three enrolments: more rows than one statement takes (7 parameters a row),
    versions 1.. per enrolment in the order given, each payload its own event."""
    admin = await make.platform_admin(db)
    conn = await outbox.driver_connection(db)
    enrolments = [uuid.uuid4() for _ in range(3)]
    events = [_started(admin.campus_id, enrolments[n % 3], n) for n in range(6_000)]
    versions = await outbox.append(conn, events)
    assert versions == {(admin.campus_id, "enrolment", e): 2_000 for e in enrolments}
    rows = await conn.fetch(
        "SELECT id, aggregate_id, version, payload FROM outbox WHERE campus_id = $1 AND aggregate_id = ANY($2::uuid[]) "
        "ORDER BY aggregate_id, version",
        admin.campus_id, enrolments,
    )
    assert len(rows) == 6_000
    for e in enrolments:
        mine = [r for r in rows if r["aggregate_id"] == e]
        assert [r["version"] for r in mine] == list(range(1, 2_001))
        decoded = [Event.FromString(r["payload"]) for r in mine]
        assert [(d.id, d.version) for d in decoded] == [(str(r["id"]), r["version"]) for r in mine]
        # in the order appended: enrolment e's events are n = k, k + 3, k + 6, ...
        k = enrolments.index(e)
        assert [d.lesson_started.lesson_id for d in decoded[:3]] == [str(uuid.UUID(int=n)) for n in (k, k + 3, k + 6)]
    # the next append continues each enrolment's numbering
    assert await outbox.append(conn, [_started(admin.campus_id, enrolments[0], 1)]) == {
        (admin.campus_id, "enrolment", enrolments[0]): 2_001
    }


async def test_a_writer_expecting_another_version_gets_a_conflict_and_writes_nothing(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    conn = await outbox.driver_connection(db)
    enrolment = uuid.uuid4()
    await outbox.append(conn, [_started(admin.campus_id, enrolment, 1)])
    key = (admin.campus_id, "enrolment", enrolment)
    with pytest.raises(Conflict, match="is at version 1, not 0"):
        async with db.begin_nested():  # its SAVEPOINT made when the session's connection is asked for
            await outbox.append(await outbox.driver_connection(db), [_started(admin.campus_id, enrolment, 2)], expected={key: 0})
    assert await conn.fetchval("SELECT count(*) FROM outbox WHERE campus_id = $1 AND aggregate_id = $2", admin.campus_id, enrolment) == 1
    assert await outbox.append(conn, [_started(admin.campus_id, enrolment, 2)], expected={key: 1}) == {key: 2}
