"""Service tests on the session-wide database (``database`` fixture): one session per test inside a
transaction that is rolled back, and the people and courses they need, made through the services.

Campus A (the fixture's, with its admin) and a campus B made inside the test's transaction, so
"another campus's data is not found" is checked without leaving anything behind.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.courses import service as courses
from lmsd.courses.schemas import CourseIn, CoursePatch
from lmsd.db.engine import make_engine
from lmsd.db.models import User
from lmsd.identity import service as identity
from lmsd.policy import Identity
from tests.db import Database

PASSWORD = "learning-is-fun-2026"


@asynccontextmanager
async def rolled_back(database: Database) -> AsyncIterator[AsyncSession]:
    """A session whose every write is undone at the end (services' flushes and savepoints work)."""
    engine = make_engine(database.settings, database.secrets, pool_size=1)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
            try:
                yield session
            finally:
                await session.close()
                await transaction.rollback()
    finally:
        await engine.dispose()


async def campus_admin(session: AsyncSession, database: Database) -> Identity:
    """Campus A's first admin (made by the fixture)."""
    user = await session.scalar(
        select(User).where(
            User.campus_id == uuid.UUID(database.settings.campus.id), User.email == database.settings.campus.admin_email
        )
    )
    assert user is not None
    return identity.identity_of(user)


async def member(session: AsyncSession, admin: Identity, role: str = "learner") -> Identity:
    """A new account of the admin's campus."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    user = await identity.create_user(session, admin, email, f"{role.title()} {email[:10]}", role, PASSWORD)
    return identity.identity_of(user)


@dataclass
class CampusB:
    admin: Identity
    learner: Identity


async def campus_b(session: AsyncSession) -> CampusB:
    """Another campus, with an admin and a learner."""
    campus = await identity.ensure_campus(session, uuid.uuid4(), "Campus B", f"b-{uuid.uuid4().hex[:6]}.example")
    user, _ = await identity.ensure_admin(session, campus.id, f"admin@{campus.host}", PASSWORD, platform_admin=False)
    admin = identity.identity_of(user)
    return CampusB(admin, await member(session, admin))


async def published_course(
    session: AsyncSession, teacher: Identity, *, language: str = "en", tags: tuple[str, ...] = (), publish: bool = True
) -> uuid.UUID:
    """A course the teacher teaches (self-enrolment open), published unless asked not to."""
    course = await courses.create_course(
        session, teacher,
        CourseIn(code=f"C{uuid.uuid4().hex[:8]}", title="Course", language=language, tags=list(tags), self_enrol=True),
    )
    if publish:
        await courses.update_course(session, teacher, course.id, CoursePatch(status="published"), "*")
    return course.id
