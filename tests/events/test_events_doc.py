"""docs/events.md lists every event of the contracts with every field, and every consumer."""

from __future__ import annotations

from pathlib import Path

from lmsd.contracts.v1 import envelope_pb2
from lmsd.events.streams import CONSUMERS, STREAMS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()


def test_every_event_and_field_is_documented() -> None:
    for field in envelope_pb2.Event.DESCRIPTOR.oneofs_by_name["body"].fields:
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{field.name}` ({field.number})")), None)
        assert row is not None, f"{field.name} is not in docs/events.md"
        for sub in field.message_type.fields:
            assert f"`{sub.name}`" in row, f"{field.name}.{sub.name} is not documented"
    for field in envelope_pb2.Event.DESCRIPTOR.fields:
        if field.containing_oneof is not None:
            continue
        assert f"| `{field.name}` |" in DOC, f"envelope field {field.name} is not documented"


def test_every_stream_and_consumer_is_documented() -> None:
    for stream in STREAMS:
        assert f"`{stream.name}`" in DOC
    for consumer in CONSUMERS:
        assert f"| `{consumer.name}` |" in DOC
    for projection in ("progress", "gradebook", "xapi"):
        assert f"`{projection}` (table" in DOC
