"""The event backbone (docs/events.md): the outbox, the aggregates' versions, what each consumer
applied, the consumers' positions and the projections' snapshots. Core tables: written with bulk SQL
by lmsd.events, never through the ORM's unit of work."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from lmsd.db.models.base import Base

outbox = Table(
    "outbox",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),  # identity: commit-independent order of writing
    Column("id", Uuid, nullable=False),  # the event id; Nats-Msg-Id
    Column("subject", Text, nullable=False),
    Column("aggregate", String(32), nullable=False),
    Column("aggregate_id", Uuid, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the encoded lmsd.contracts.v1.Event
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "seq"),
    UniqueConstraint("campus_id", "id", name="uq_outbox_event"),
    UniqueConstraint("campus_id", "aggregate", "aggregate_id", "version", name="uq_outbox_aggregate_version"),
    Index("ix_outbox_created_at", "created_at", postgresql_using="brin"),  # pruning
)
event_aggregates = Table(
    "event_aggregates",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("aggregate", String(32), nullable=False),
    Column("aggregate_id", Uuid, nullable=False),
    Column("version", BigInteger, nullable=False),  # last version written (optimistic concurrency)
    Column("published_version", BigInteger, server_default="0", nullable=False),
    Column("published_seq", BigInteger, server_default="0", nullable=False),  # its stream sequence
    Column("attempts", Integer, server_default="0", nullable=False),  # failed publishes of the next event
    Column("last_error", Text, server_default="", nullable=False),
    PrimaryKeyConstraint("campus_id", "aggregate", "aggregate_id"),
    # the relay's work list: outbox rows are never updated; an aggregate has unpublished events
    # while version > published_version
    Index("ix_event_aggregates_pending", "published_seq", postgresql_where=text("version > published_version")),
)
consumer_applied = Table(
    "consumer_applied",
    Base.metadata,
    Column("campus_id", Uuid, nullable=False),
    Column("consumer", String(64), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("applied_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("campus_id", "consumer", "event_id"),
)
event_consumers = Table(
    "event_consumers",
    Base.metadata,
    Column("name", String(64), primary_key=True),
    Column("applied", BigInteger, server_default="0", nullable=False),
    Column("last_stream_seq", BigInteger, server_default="0", nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)
projection_snapshots = Table(
    "projection_snapshots",
    Base.metadata,
    Column("projection", String(64), primary_key=True),
    Column("stream_seq", BigInteger, nullable=False),  # every event up to here is in the copy
    Column("events", BigInteger, nullable=False),
    Column("taken_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)
