"""What the consumers read from a delivered message: the event (refused unless its ids are
UUIDs) and the stream sequence from the ack subject."""

from __future__ import annotations

import uuid

import pytest
from nats.aio.msg import Msg

from lmsd.contracts.v1 import learning_pb2
from lmsd.events.consumers import stream_seq
from lmsd.events.envelope import Event, Undecodable, decode


def _event(**ids: str) -> bytes:
    fields = {"id": str(uuid.uuid4()), "campus_id": str(uuid.uuid4()), "aggregate_id": str(uuid.uuid4()), **ids}
    ev = Event(aggregate="enrolment", version=1, **fields)
    ev.lesson_started.CopyFrom(learning_pb2.LessonStarted(course_id=str(uuid.uuid4()), lesson_id=str(uuid.uuid4())))
    return ev.SerializeToString()


SOME = "5b0d7a52-8f8e-4b8e-9a57-6c6d73640001"


@pytest.mark.parametrize("value", [SOME, SOME.upper(), SOME.replace("-", ""), "{" + SOME + "}", "urn:uuid:" + SOME])
def test_ids_in_any_form_uuid_accepts_decode(value: str) -> None:
    assert decode(_event(id=value)).id == value


@pytest.mark.parametrize("field", ["id", "campus_id", "aggregate_id"])
@pytest.mark.parametrize("value", ["", "not-a-uuid", "123e4567-e89b-12d3-a456-42661417400g", "123e4567-e89b-12d3-a456-4266141740"])
def test_an_event_whose_ids_are_not_uuids_is_undecodable(field: str, value: str) -> None:
    with pytest.raises(Undecodable):
        decode(_event(**{field: value}))


def test_bytes_that_are_not_an_event_are_undecodable() -> None:
    with pytest.raises(Undecodable):
        decode(b"\xff\xff\xff not protobuf")


def test_the_stream_sequence_comes_from_the_ack_subject() -> None:
    short = Msg(None, subject="lmsd.x", reply="$JS.ACK.LMSD_EVENTS.learning.1.4711.12.1764000000000000000.3")  # type: ignore[arg-type]
    assert stream_seq(short) == 4711
    # the longer form (domain and account hash) through nats-py's own parser
    long = Msg(None, subject="lmsd.x", reply="$JS.ACK._.ACCHASH.LMSD_EVENTS.learning.2.815.13.1764000000000000000.0.abc")  # type: ignore[arg-type]
    assert stream_seq(long) == 815
