"""campus branding for the portal: logo and default language

Revision ID: 20261125_0007
Revises: 20261125_0006
Create Date: 2026-11-25
"""

from alembic import op

revision = "20261125_0007"
down_revision = "20261125_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # campuses is a Citus reference table: a logo (at most 256 KiB, checked by the service) is
    # small enough to replicate, and it is backed up with the database.
    op.execute("ALTER TABLE campuses ADD COLUMN logo bytea")
    op.execute("ALTER TABLE campuses ADD COLUMN logo_type varchar(64)")
    # a hash of the logo, written with it: pages version the logo's URL and its ETag without
    # reading or hashing the image on every request
    op.execute("ALTER TABLE campuses ADD COLUMN logo_hash varchar(32)")
    op.execute("ALTER TABLE campuses ADD COLUMN default_locale varchar(16) NOT NULL DEFAULT 'en'")


def downgrade() -> None:
    for column in ("default_locale", "logo_hash", "logo_type", "logo"):
        op.execute(f"ALTER TABLE campuses DROP COLUMN {column}")
