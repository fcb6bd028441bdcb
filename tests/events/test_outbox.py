"""The outbox's append (lmsd.events.outbox): small appends as multi-row VALUES (lmsd.db.values),
larger ones as arrays and COPY; on the session-wide database."""

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


def test_a_source_is_values_up_to_small_then_arrays() -> None:
    assert values.source("($::uuid, $::text)", [("a", "b"), ("c", "d")]) == ("VALUES ($1::uuid, $2::text), ($3::uuid, $4::text)", ["a", "b", "c", "d"])
    many = [(n, str(n)) for n in range(values.SMALL + 1)]
    assert values.source("($::bigint, $::text)", many) == (
        "SELECT * FROM unnest($1::bigint[], $2::text[])", [[n for n, _ in many], [t for _, t in many]]
    )


async def test_an_append_over_many_enrolments_allocates_from_arrays(db: AsyncSession) -> None:
    admin = await make.platform_admin(db)
    conn = await outbox.driver_connection(db)
    enrolments = [uuid.uuid4() for _ in range(values.SMALL + 8)]
    versions = await outbox.append(conn, [_started(admin.campus_id, e, n) for n, e in enumerate(enrolments * 2)])
    assert versions == {(admin.campus_id, "enrolment", e): 2 for e in enrolments}


def _started(campus: uuid.UUID, enrolment: uuid.UUID, n: int) -> NewEvent:
    lesson = str(uuid.UUID(int=n))
    return NewEvent(campus, enrolment, "lesson_started", learning_pb2.LessonStarted(course_id=lesson, lesson_id=lesson))


@pytest.mark.parametrize("per_enrolment", [values.SMALL // 3, 2_000], ids=["values", "copy"])
async def test_append_numbers_each_aggregate_in_order(db: AsyncSession, per_enrolment: int) -> None:
    """Events of three enrolments, interleaved: versions 1.. per enrolment in the order given,
    each payload its own event; a small append (VALUES) and a large one (COPY) alike."""
    admin = await make.platform_admin(db)
    conn = await outbox.driver_connection(db)
    enrolments = [uuid.uuid4() for _ in range(3)]
    events = [_started(admin.campus_id, enrolments[n % 3], n) for n in range(3 * per_enrolment)]
    versions = await outbox.append(conn, events)
    assert versions == {(admin.campus_id, "enrolment", e): per_enrolment for e in enrolments}
    rows = await conn.fetch(
        "SELECT id, aggregate_id, version, payload FROM outbox WHERE campus_id = $1 AND aggregate_id = ANY($2::uuid[]) "
        "ORDER BY aggregate_id, version",
        admin.campus_id, enrolments,
    )
    assert len(rows) == 3 * per_enrolment
    for e in enrolments:
        mine = [r for r in rows if r["aggregate_id"] == e]
        assert [r["version"] for r in mine] == list(range(1, per_enrolment + 1))
        decoded = [Event.FromString(r["payload"]) for r in mine]
        assert [(d.id, d.version) for d in decoded] == [(str(r["id"]), r["version"]) for r in mine]
        # in the order appended: enrolment e's events are n = k, k + 3, k + 6, ...
        k = enrolments.index(e)
        assert [d.lesson_started.lesson_id for d in decoded[:3]] == [str(uuid.UUID(int=n)) for n in (k, k + 3, k + 6)]
    # the next append continues each enrolment's numbering
    assert await outbox.append(conn, [_started(admin.campus_id, enrolments[0], 1)]) == {
        (admin.campus_id, "enrolment", enrolments[0]): per_enrolment + 1
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
