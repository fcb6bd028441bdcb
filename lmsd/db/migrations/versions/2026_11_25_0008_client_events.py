"""client event ids: learning events a client (the portal's offline queue) may send again

Revision ID: 20261125_0008
Revises: 20261125_0007
Create Date: 2026-11-25
"""

from alembic import op

from lmsd.db.citus import distribute

revision = "20261125_0008"
down_revision = "20261125_0007"
branch_labels = None
depends_on = None

TABLES = ["client_events"]


def upgrade() -> None:
    for statement in SCHEMA.split(";")[:-1]:
        op.execute(statement)
    distribute(TABLES)


# The outbox forgets published events after its retention; this table remembers the ids a
# client chose, so an event sent again (an offline queue after a lost answer) is recorded once.
SCHEMA = """
        CREATE TABLE client_events (
            campus_id uuid NOT NULL,
            id uuid NOT NULL,
            enrolment_id uuid NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_client_events PRIMARY KEY (campus_id, id),
            CONSTRAINT fk_client_events_enrolment FOREIGN KEY (campus_id, enrolment_id)
                REFERENCES enrolments (campus_id, id) ON DELETE CASCADE
        );
        CREATE INDEX ix_client_events_enrolment ON client_events (campus_id, enrolment_id);
"""


def downgrade() -> None:
    op.execute("DROP TABLE client_events")
