"""`lmsd dev seed`: a realistic campus for benchmarks, loaded with COPY.

At scale 1: 200,000 users (2% instructors), 20,000 courses (90% published, open for
self-enrolment) with 3 modules × 3 lessons and one 5-question quiz each, and 2,000,000
enrolments (10 per learner on average, no duplicates). Everything is deterministic for a seed,
so two runs at the same scale hold the same data.

It writes rows directly (COPY) rather than through the services: a benchmark's data set, not a
path for real data.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg

from lmsd import credentials
from lmsd.db.dsn import app_dsn, ssl_arg
from lmsd.errors import OperationFailed
from lmsd.identity.service import hash_password
from lmsd.ops.report import Reporter
from lmsd.settings import Settings

BASE_USERS = 200_000
BASE_COURSES = 20_000
BASE_ENROLMENTS = 2_000_000
SEED_PASSWORD = "seeded-password-2026"
CHUNK = 100_000
TAGS = ["maths", "physics", "history", "law", "biology", "art", "music", "economics", "computing", "languages"]
LANGS = ["en", "en", "en", "fr", "de", "es"]
WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor", "incididunt"]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def sizes(scale: float) -> dict[str, int]:
    if scale <= 0:
        raise OperationFailed("scale must be positive")
    return {
        "users": max(10, int(BASE_USERS * scale)),
        "courses": max(2, int(BASE_COURSES * scale)),
        "enrolments": max(10, int(BASE_ENROLMENTS * scale)),
    }


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    total = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            total += len(batch)
            batch = []
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=columns)
        total += len(batch)
    return total


async def _seed(settings: Settings, scale: float, reporter: Reporter, seed: int) -> dict[str, int]:
    n = sizes(scale)
    rng = random.Random(seed)
    secrets = credentials.load(settings.data_dir)
    campus = uuid.UUID(settings.campus.id)
    password_hash = await hash_password(SEED_PASSWORD)
    conn = await asyncpg.connect(app_dsn(settings, secrets), ssl=ssl_arg(settings))
    counts: dict[str, int] = {}
    try:
        user_ids = [_uuid(rng) for _ in range(n["users"])]
        n_instructors = max(1, n["users"] // 50)
        with reporter.step(f"Users ({n['users']:,})"):
            counts["users"] = await _copy(
                conn, "users", ["campus_id", "id", "email", "display_name", "password_hash", "role"],
                (
                    (campus, uid, f"user{i}@seed.example", f"Seeded User {i}", password_hash,
                     "instructor" if i < n_instructors else "learner")
                    for i, uid in enumerate(user_ids)
                ),
            )
        course_ids = [_uuid(rng) for _ in range(n["courses"])]
        with reporter.step(f"Courses ({n['courses']:,}) with instructors"):
            counts["courses"] = await _copy(
                conn, "courses", ["campus_id", "id", "code", "title", "summary", "language", "tags", "status", "self_enrol"],
                (
                    (campus, cid, f"SEED-{i}", f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}",
                     " ".join(rng.choices(WORDS, k=30)), rng.choice(LANGS), rng.sample(TAGS, 2),
                     "published" if i % 10 else "draft", True)
                    for i, cid in enumerate(course_ids)
                ),
            )
            await _copy(
                conn, "course_instructors", ["campus_id", "course_id", "user_id"],
                ((campus, cid, user_ids[i % n_instructors]) for i, cid in enumerate(course_ids)),
            )
        with reporter.step("Modules, lessons and quizzes"):
            modules = [(cid, _uuid(rng), pos) for cid in course_ids for pos in range(3)]
            counts["modules"] = await _copy(
                conn, "modules", ["campus_id", "id", "course_id", "position", "title"],
                ((campus, mid, cid, pos, f"Module {pos + 1}") for cid, mid, pos in modules),
            )
            body = "# Lesson\n\n" + " ".join(WORDS * 8)
            counts["lessons"] = await _copy(
                conn, "lessons", ["campus_id", "id", "module_id", "course_id", "position", "title", "kind", "body"],
                ((campus, _uuid(rng), mid, cid, p, f"Lesson {p + 1}", "text", body) for cid, mid, _ in modules for p in range(3)),
            )
            quizzes = [(cid, _uuid(rng)) for cid in course_ids]
            counts["quizzes"] = await _copy(
                conn, "quizzes", ["campus_id", "id", "course_id", "title", "max_attempts"],
                ((campus, qid, cid, "Check-in", 0) for cid, qid in quizzes),
            )
            counts["questions"] = await _copy(
                conn, "questions", ["campus_id", "id", "quiz_id", "position", "kind", "prompt", "options", "answer", "points"],
                ((campus, _uuid(rng), qid, p, "single", f"Question {p + 1}?", '["yes", "no", "maybe"]', "1", 1)
                 for _, qid in quizzes for p in range(5)),
            )
        learners = user_ids[n_instructors:]
        published = [cid for i, cid in enumerate(course_ids) if i % 10]
        with reporter.step(f"Enrolments ({n['enrolments']:,})"):
            counts["enrolments"] = await _copy(
                conn, "enrolments", ["campus_id", "id", "course_id", "user_id", "status"],
                ((campus, _uuid(rng), cid, uid, "active") for cid, uid in _pairs(rng, learners, published, n["enrolments"])),
            )
        with reporter.step("Analysing tables"):
            await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return counts


def _pairs(rng: random.Random, learners: list[uuid.UUID], courses: list[uuid.UUID], total: int) -> Iterator[tuple[uuid.UUID, uuid.UUID]]:
    """``total`` distinct (course, learner) pairs, spread evenly over learners."""
    base, extra = divmod(total, len(learners))
    for index, uid in enumerate(learners):
        want = min(base + (1 if index < extra else 0), len(courses))
        for cid in rng.sample(courses, want):
            yield cid, uid


def seed(settings: Settings, scale: float, reporter: Reporter, seed_value: int = 2026) -> dict[str, int]:
    try:
        return asyncio.run(_seed(settings, scale, reporter, seed_value))
    except asyncpg.UniqueViolationError:
        raise OperationFailed("this campus is already seeded (seed data is loaded once)") from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise OperationFailed(f"seeding failed: {exc}") from None
