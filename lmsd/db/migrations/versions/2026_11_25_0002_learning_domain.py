"""learning domain: courses, modules, lessons, enrolments, quizzes, tokens; Citus-ready keys

Revision ID: 20261125_0002
Revises: 20261125_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from lmsd.db.citus import distribute

revision = "20261125_0002"
down_revision = "20261125_0001"
branch_labels = None
depends_on = None

UUID = sa.Uuid()


def _fk(table: str, cols: list[str], ref: str, ref_cols: list[str]) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        cols, [f"{ref}.{c}" for c in ref_cols], name=f"fk_{table}_{'_'.join(cols)}_{ref}", ondelete="CASCADE"
    )


def upgrade() -> None:
    # users: the primary key gains the distribution column; platform admins; a locale.
    op.drop_constraint("pk_users", "users", type_="primary")
    op.create_primary_key("pk_users", "users", ["campus_id", "id"])
    op.add_column("users", sa.Column("platform_admin", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("users", sa.Column("locale", sa.String(16), server_default="en", nullable=False))
    op.add_column("users", sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False))
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "courses",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("language", sa.String(16), server_default="en", nullable=False),
        sa.Column("tags", pg.ARRAY(sa.String(64)), server_default="{}", nullable=False),
        sa.Column("status", sa.String(16), server_default="draft", nullable=False),
        sa.Column("self_enrol", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_courses"),
        sa.UniqueConstraint("campus_id", "code", name="uq_courses_campus_id"),
        sa.ForeignKeyConstraint(["campus_id"], ["campuses.id"], name="fk_courses_campus_id_campuses", ondelete="CASCADE"),
    )
    op.create_index("ix_courses_catalog", "courses", ["campus_id", "status", "id"])
    op.create_table(
        "course_instructors",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("course_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "course_id", "user_id", name="pk_course_instructors"),
        _fk("course_instructors", ["campus_id", "course_id"], "courses", ["campus_id", "id"]),
        _fk("course_instructors", ["campus_id", "user_id"], "users", ["campus_id", "id"]),
    )
    op.create_index("ix_course_instructors_user", "course_instructors", ["campus_id", "user_id"])
    op.create_table(
        "modules",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("course_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_modules"),
        _fk("modules", ["campus_id", "course_id"], "courses", ["campus_id", "id"]),
    )
    op.create_index("ix_modules_course", "modules", ["campus_id", "course_id", "position"])
    op.create_table(
        "lessons",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("module_id", UUID, nullable=False),
        sa.Column("course_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("video_id", UUID, nullable=True),
        sa.Column("quiz_id", UUID, nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_lessons"),
        _fk("lessons", ["campus_id", "module_id"], "modules", ["campus_id", "id"]),
    )
    op.create_index("ix_lessons_module", "lessons", ["campus_id", "module_id", "position"])
    op.create_table(
        "enrolments",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("course_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("status", sa.String(16), server_default="active", nullable=False),
        sa.Column("enrolled_by", UUID, nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_enrolments"),
        sa.UniqueConstraint("campus_id", "course_id", "user_id", name="uq_enrolments_campus_id"),
        _fk("enrolments", ["campus_id", "course_id"], "courses", ["campus_id", "id"]),
        _fk("enrolments", ["campus_id", "user_id"], "users", ["campus_id", "id"]),
    )
    op.create_index("ix_enrolments_user", "enrolments", ["campus_id", "user_id", "id"])
    op.create_table(
        "quizzes",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("course_id", UUID, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_quizzes"),
        _fk("quizzes", ["campus_id", "course_id"], "courses", ["campus_id", "id"]),
    )
    op.create_table(
        "questions",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("quiz_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("options", pg.JSONB(), server_default="[]", nullable=False),
        sa.Column("answer", pg.JSONB(), nullable=False),
        sa.Column("points", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_questions"),
        _fk("questions", ["campus_id", "quiz_id"], "quizzes", ["campus_id", "id"]),
    )
    op.create_index("ix_questions_quiz", "questions", ["campus_id", "quiz_id", "position"])
    op.create_table(
        "attempts",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("quiz_id", UUID, nullable=False),
        sa.Column("course_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("answers", pg.JSONB(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_attempts"),
        sa.UniqueConstraint("campus_id", "quiz_id", "user_id", "number", name="uq_attempts_campus_id"),
        _fk("attempts", ["campus_id", "quiz_id"], "quizzes", ["campus_id", "id"]),
        _fk("attempts", ["campus_id", "user_id"], "users", ["campus_id", "id"]),
    )
    op.create_index("ix_attempts_course_user", "attempts", ["campus_id", "course_id", "user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("family_id", UUID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_refresh_tokens"),
        sa.UniqueConstraint("campus_id", "token_hash", name="uq_refresh_tokens_campus_id"),
        _fk("refresh_tokens", ["campus_id", "user_id"], "users", ["campus_id", "id"]),
    )
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["campus_id", "family_id"])
    op.create_table(
        "password_resets",
        sa.Column("campus_id", UUID, nullable=False),
        sa.Column("id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_password_resets"),
        sa.UniqueConstraint("campus_id", "token_hash", name="uq_password_resets_campus_id"),
        _fk("password_resets", ["campus_id", "user_id"], "users", ["campus_id", "id"]),
    )
    distribute(
        ["campuses", "users", "courses", "course_instructors", "modules", "lessons", "enrolments",
         "quizzes", "questions", "attempts", "refresh_tokens", "password_resets"]
    )


def downgrade() -> None:
    for table in ("password_resets", "refresh_tokens", "attempts", "questions", "quizzes", "enrolments",
                  "lessons", "modules", "course_instructors", "courses"):
        op.drop_table(table)
    op.drop_column("users", "locked_until")
    op.drop_column("users", "failed_logins")
    op.drop_column("users", "locale")
    op.drop_column("users", "platform_admin")
    op.drop_constraint("pk_users", "users", type_="primary")
    op.create_primary_key("pk_users", "users", ["id"])
