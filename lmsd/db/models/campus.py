"""Campuses and identity: the tenant, its users, their refresh tokens and password resets, and the
OpenID Connect providers a campus signs in with."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lmsd.db.models.base import Base, now_column


class Campus(Base):
    """A tenant. One deployment may host several campuses."""

    __tablename__ = "campuses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(253))
    created_at: Mapped[datetime] = now_column()
    # the portal's branding (campus admins): a logo image and the language of anonymous pages
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    logo_hash: Mapped[str | None] = mapped_column(String(32), nullable=True)  # sha256 prefix, set with the logo
    default_locale: Mapped[str] = mapped_column(String(16), server_default="en", default="en")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("campus_id", "email"),
        ForeignKeyConstraint(["campus_id"], ["campuses.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # learner | instructor | admin (of this campus)
    platform_admin: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    locale: Mapped[str] = mapped_column(String(16), server_default="en", default="en")
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = now_column()


class RefreshToken(Base):
    """One link of a refresh-token family; reuse of a used link revokes the whole family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        UniqueConstraint("campus_id", "token_hash"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
        Index("ix_refresh_tokens_family", "campus_id", "family_id"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    family_id: Mapped[uuid.UUID] = mapped_column()
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = now_column()


class PasswordReset(Base):
    __tablename__ = "password_resets"
    __table_args__ = (
        UniqueConstraint("campus_id", "token_hash"),
        ForeignKeyConstraint(["campus_id", "user_id"], ["users.campus_id", "users.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column()
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SsoProvider(Base):
    """An OpenID Connect identity provider a campus signs in with (its university's IdP)."""

    __tablename__ = "sso_providers"
    __table_args__ = (
        UniqueConstraint("campus_id", "slug"),
        ForeignKeyConstraint(["campus_id"], ["campuses.id"], ondelete="CASCADE"),
    )

    campus_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret: Mapped[str] = mapped_column(String(500))
    scopes: Mapped[str] = mapped_column(String(500), server_default="openid email profile", default="openid email profile")
    default_role: Mapped[str] = mapped_column(String(20), server_default="learner", default="learner")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true", default=True)
    # a campus admin vouches that this provider only hands out addresses their owners control:
    # its e-mails count as verified without email_verified: true (lmsd.identity.sso)
    trust_email: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
