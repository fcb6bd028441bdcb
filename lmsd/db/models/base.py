"""The one metadata every model is declared on (so Alembic sees them all), and its naming rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def now_column() -> Mapped[datetime]:
    """A timestamp column that defaults to the time of the insert."""
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def ts_column(name: str, nullable: bool = True) -> Column[Any]:
    """A timestamp column of a Core table."""
    return Column(name, DateTime(timezone=True), nullable=nullable)
