"""index lessons by course: the course outline read them by course and scanned the table

Revision ID: 20261125_0004
Revises: 20261125_0003
Create Date: 2026-11-25
"""

from alembic import op

revision = "20261125_0004"
down_revision = "20261125_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_lessons_course", "lessons", ["campus_id", "course_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_lessons_course", "lessons")
