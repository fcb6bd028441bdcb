"""Engine and session factory from settings (nothing at import time): the primary's engine."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from lmsd.credentials import Secrets
from lmsd.db.dsn import connect_args, engine_url
from lmsd.settings import Settings


def make_engine(settings: Settings, secrets: Secrets, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        engine_url(settings, secrets),
        connect_args=connect_args(settings),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)
