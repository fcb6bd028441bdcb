"""sso providers: OpenID Connect sign-in per campus

Revision ID: 20261125_0003
Revises: 20261125_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from lmsd.db.citus import distribute

revision = "20261125_0003"
down_revision = "20261125_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_providers",
        sa.Column("campus_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(500), nullable=False),
        sa.Column("client_secret", sa.String(500), nullable=False),
        sa.Column("scopes", sa.String(500), server_default="openid email profile", nullable=False),
        sa.Column("default_role", sa.String(20), server_default="learner", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.PrimaryKeyConstraint("campus_id", "id", name="pk_sso_providers"),
        sa.UniqueConstraint("campus_id", "slug", name="uq_sso_providers_campus_id"),
        sa.ForeignKeyConstraint(["campus_id"], ["campuses.id"], name="fk_sso_providers_campus_id_campuses", ondelete="CASCADE"),
    )
    distribute(["sso_providers"])


def downgrade() -> None:
    op.drop_table("sso_providers")
