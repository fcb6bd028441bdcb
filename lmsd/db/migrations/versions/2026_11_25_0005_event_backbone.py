"""event backbone: transactional outbox, aggregate versions, consumer bookkeeping, projections

Revision ID: 20261125_0005
Revises: 20261125_0004
Create Date: 2026-11-25
"""

from alembic import op

from lmsd.db.citus import distribute

revision = "20261125_0005"
down_revision = "20261125_0004"
branch_labels = None
depends_on = None

TABLES = [
    "outbox", "event_aggregates", "consumer_applied", "progress", "lesson_progress", "grades",
    "xapi_statements", "event_consumers", "projection_snapshots",
]


def upgrade() -> None:
    for statement in SCHEMA.split(";")[:-1]:
        op.execute(statement)
    # wake the relay when rows arrive (it also polls, slowly, in case a notification is missed)
    op.execute(
        "CREATE FUNCTION lmsd_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('lmsd_outbox', ''); RETURN NULL; END $$"
    )
    op.execute("CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION lmsd_outbox_notify()")
    distribute(TABLES)


SCHEMA = """
        CREATE TABLE outbox (
            campus_id uuid NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            id uuid NOT NULL,
            subject text NOT NULL,
            aggregate varchar(32) NOT NULL,
            aggregate_id uuid NOT NULL,
            version bigint NOT NULL,
            payload bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz,
            stream_seq bigint,
            attempts integer NOT NULL DEFAULT 0,
            last_error text NOT NULL DEFAULT '',
            CONSTRAINT pk_outbox PRIMARY KEY (campus_id, seq),
            CONSTRAINT uq_outbox_event UNIQUE (campus_id, id),
            CONSTRAINT uq_outbox_aggregate_version UNIQUE (campus_id, aggregate, aggregate_id, version)
        );
        -- the relay's work list: small however long the history grows
        CREATE INDEX ix_outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
        CREATE INDEX ix_outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

        CREATE TABLE event_aggregates (
            campus_id uuid NOT NULL,
            aggregate varchar(32) NOT NULL,
            aggregate_id uuid NOT NULL,
            version bigint NOT NULL,
            published_version bigint NOT NULL DEFAULT 0,
            published_seq bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_event_aggregates PRIMARY KEY (campus_id, aggregate, aggregate_id)
        );
        CREATE TABLE consumer_applied (
            campus_id uuid NOT NULL,
            consumer varchar(64) NOT NULL,
            event_id uuid NOT NULL,
            stream_seq bigint NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_consumer_applied PRIMARY KEY (campus_id, consumer, event_id)
        );
        CREATE TABLE progress (
            campus_id uuid NOT NULL,
            enrolment_id uuid NOT NULL,
            course_id uuid NOT NULL,
            user_id uuid NOT NULL,
            events bigint NOT NULL,
            lessons_started integer NOT NULL,
            lessons_completed integer NOT NULL,
            watched_ms bigint NOT NULL,
            quiz_attempts integer NOT NULL,
            last_lesson_id uuid,
            last_activity_at timestamptz,
            completed_at timestamptz,
            CONSTRAINT pk_progress PRIMARY KEY (campus_id, enrolment_id)
        );
        CREATE TABLE lesson_progress (
            campus_id uuid NOT NULL,
            enrolment_id uuid NOT NULL,
            lesson_id uuid NOT NULL,
            started_at timestamptz,
            completed_at timestamptz,
            watched jsonb NOT NULL,
            watched_ms bigint NOT NULL,
            CONSTRAINT pk_lesson_progress PRIMARY KEY (campus_id, enrolment_id, lesson_id)
        );
        CREATE TABLE grades (
            campus_id uuid NOT NULL,
            enrolment_id uuid NOT NULL,
            quiz_id uuid NOT NULL,
            course_id uuid NOT NULL,
            user_id uuid NOT NULL,
            attempts integer NOT NULL,
            best_score double precision NOT NULL,
            max_score double precision NOT NULL,
            last_graded_at timestamptz,
            CONSTRAINT pk_grades PRIMARY KEY (campus_id, enrolment_id, quiz_id)
        );
        CREATE TABLE xapi_statements (
            campus_id uuid NOT NULL,
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            course_id uuid NOT NULL,
            verb text NOT NULL,
            activity text NOT NULL,
            "timestamp" timestamptz NOT NULL,
            stored timestamptz NOT NULL,
            event bytea NOT NULL,
            CONSTRAINT pk_xapi_statements PRIMARY KEY (campus_id, id)
        );
        CREATE INDEX ix_xapi_statements_stored ON xapi_statements (campus_id, stored, id);
        CREATE TABLE event_consumers (
            name varchar(64) PRIMARY KEY,
            applied bigint NOT NULL DEFAULT 0,
            last_stream_seq bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE projection_snapshots (
            projection varchar(64) PRIMARY KEY,
            stream_seq bigint NOT NULL,
            events bigint NOT NULL,
            taken_at timestamptz NOT NULL DEFAULT now()
        );
"""


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS lmsd_snapshots CASCADE")
    op.execute("DROP SCHEMA IF EXISTS lmsd_replay CASCADE")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP FUNCTION lmsd_outbox_notify()")
