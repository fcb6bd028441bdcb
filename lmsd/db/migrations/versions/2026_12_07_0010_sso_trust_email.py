"""sso_providers.trust_email: a campus admin may trust a provider's e-mail addresses

Revision ID: 20261207_0010
Revises: 20261206_0009
Create Date: 2026-12-07

A sign-in through OpenID Connect names an account by e-mail only when the ID token says
email_verified: true, or when the campus admin marked the provider as trusted for e-mail (a
provider that only hands out addresses its users own but omits the claim). Existing providers
are not trusted: they start asking for the claim, the safe side.
"""

from alembic import op

revision = "20261207_0010"
down_revision = "20261206_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE sso_providers ADD COLUMN trust_email boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE sso_providers DROP COLUMN trust_email")
