"""outbox: publication recorded per aggregate, outbox rows never updated

Revision ID: 20261206_0009
Revises: 20261125_0008
Create Date: 2026-12-06

The relay used to mark every published row (sent_at, stream_seq): an UPDATE per event that
wrote a new row version and an entry in every index of the outbox (the partial indexes on
sent_at made it non-HOT), then left it to vacuum. What was published is already known per
aggregate (event_aggregates.published_version, published_seq: the relay's expectation of the
stream), so the rows stay as written: an aggregate has unpublished events while its version is
ahead of its published version, and the relay finds those aggregates through a small partial
index. A failing aggregate's attempts and last error move to event_aggregates with it.
"""

from alembic import op

revision = "20261206_0009"
down_revision = "20261125_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in SCHEMA.split(";")[:-1]:
        op.execute(statement)


SCHEMA = """
        ALTER TABLE event_aggregates
            ADD COLUMN attempts integer NOT NULL DEFAULT 0,
            ADD COLUMN last_error text NOT NULL DEFAULT '';
        -- the relay's work list: the aggregates with unpublished events, least recently published first
        CREATE INDEX ix_event_aggregates_pending ON event_aggregates (published_seq)
            WHERE version > published_version;
        DROP INDEX ix_outbox_unsent;
        DROP INDEX ix_outbox_sent_at;
        ALTER TABLE outbox DROP COLUMN sent_at, DROP COLUMN stream_seq, DROP COLUMN attempts, DROP COLUMN last_error;
        -- pruning finds old rows by time, and rows arrive in time order: a block range index suffices
        CREATE INDEX ix_outbox_created_at ON outbox USING brin (created_at);
"""


def downgrade() -> None:
    op.execute("DROP INDEX ix_outbox_created_at")
    op.execute(
        "ALTER TABLE outbox ADD COLUMN sent_at timestamptz, ADD COLUMN stream_seq bigint, "
        "ADD COLUMN attempts integer NOT NULL DEFAULT 0, ADD COLUMN last_error text NOT NULL DEFAULT ''"
    )
    # rows up to each aggregate's published version were published (their stream sequence is not kept)
    op.execute(
        "UPDATE outbox o SET sent_at = now() FROM event_aggregates a WHERE a.campus_id = o.campus_id "
        "AND a.aggregate = o.aggregate AND a.aggregate_id = o.aggregate_id AND o.version <= a.published_version"
    )
    op.execute("CREATE INDEX ix_outbox_unsent ON outbox (seq) WHERE sent_at IS NULL")
    op.execute("CREATE INDEX ix_outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL")
    op.execute("DROP INDEX ix_event_aggregates_pending")
    op.execute("ALTER TABLE event_aggregates DROP COLUMN attempts, DROP COLUMN last_error")
