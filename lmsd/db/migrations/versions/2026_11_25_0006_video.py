"""video platform: tus uploads, videos, transcripts

Revision ID: 20261125_0006
Revises: 20261125_0005
Create Date: 2026-11-25
"""

from alembic import op

from lmsd.db.citus import distribute

revision = "20261125_0006"
down_revision = "20261125_0005"
branch_labels = None
depends_on = None

TABLES = ["uploads", "videos", "video_transcripts"]


def upgrade() -> None:
    for statement in SCHEMA.split(";")[:-1]:
        op.execute(statement)
    distribute(TABLES)


SCHEMA = """
        -- a tus upload in progress: its bytes are in <data>/uploads/<id>, whose size is the offset
        CREATE TABLE uploads (
            campus_id uuid NOT NULL,
            id uuid NOT NULL,
            course_id uuid NOT NULL,
            owner_id uuid NOT NULL,
            length bigint NOT NULL,
            filename text NOT NULL,
            filetype text NOT NULL,
            title text NOT NULL,
            language varchar(35),
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            CONSTRAINT pk_uploads PRIMARY KEY (campus_id, id),
            CONSTRAINT fk_uploads_course FOREIGN KEY (campus_id, course_id)
                REFERENCES courses (campus_id, id) ON DELETE CASCADE
        );
        CREATE INDEX ix_uploads_expires ON uploads (expires_at);

        CREATE TABLE videos (
            campus_id uuid NOT NULL,
            id uuid NOT NULL,
            course_id uuid NOT NULL,
            uploaded_by uuid NOT NULL,
            title text NOT NULL,
            filename text NOT NULL,
            size_bytes bigint NOT NULL,
            language varchar(35),
            status varchar(16) NOT NULL DEFAULT 'uploaded',
            progress smallint NOT NULL DEFAULT 0,
            error text NOT NULL DEFAULT '',
            attempts integer NOT NULL DEFAULT 0,
            probe jsonb NOT NULL,
            duration_ms bigint NOT NULL DEFAULT 0,
            renditions jsonb NOT NULL DEFAULT '[]',
            audio jsonb,
            poster text NOT NULL DEFAULT '',
            sprite_vtt text NOT NULL DEFAULT '',
            transcript_status varchar(16) NOT NULL DEFAULT 'pending',
            transcript_error text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_videos PRIMARY KEY (campus_id, id),
            CONSTRAINT fk_videos_course FOREIGN KEY (campus_id, course_id)
                REFERENCES courses (campus_id, id) ON DELETE CASCADE,
            CONSTRAINT ck_videos_status CHECK (status IN ('uploaded', 'transcoding', 'ready', 'failed')),
            CONSTRAINT ck_videos_transcript CHECK (transcript_status IN ('pending', 'ready', 'failed', 'off'))
        );
        CREATE INDEX ix_videos_course ON videos (campus_id, course_id, created_at);

        CREATE TABLE video_transcripts (
            campus_id uuid NOT NULL,
            video_id uuid NOT NULL,
            language varchar(35) NOT NULL,
            revision integer NOT NULL,
            source varchar(16) NOT NULL,
            model text NOT NULL DEFAULT '',
            cues jsonb NOT NULL,
            updated_by uuid,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_video_transcripts PRIMARY KEY (campus_id, video_id, language),
            CONSTRAINT fk_video_transcripts_video FOREIGN KEY (campus_id, video_id)
                REFERENCES videos (campus_id, id) ON DELETE CASCADE
        );
"""
