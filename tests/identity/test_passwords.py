"""Passwords on a real sign-in: Argon2 hashes and verifies in a worker thread, never on the event
loop, with no row lock held while it runs; a hash made with older parameters is replaced on the
next successful sign-in (and only then)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher

from lmsd.events.connection import pg_connect
from lmsd.identity import service as identity
from tests.api import PASSWORD, admin, client, login, person
from tests.db import Database


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _stored_hash(database: Database, user_id: str) -> str:
    conn = await pg_connect(database.settings, database.secrets)
    try:
        return str(await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user_id)))
    finally:
        await conn.close()


async def test_sign_in_rehashes_a_hash_made_with_older_parameters(database: Database) -> None:
    async with client(database) as c:
        who = await person(c, await admin(c, database), "learner")
        weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
        assert identity._hasher.check_needs_rehash(weak)
        conn = await pg_connect(database.settings, database.secrets)
        try:
            await conn.execute("UPDATE users SET password_hash = $1 WHERE id = $2", weak, uuid.UUID(who.id))
        finally:
            await conn.close()
        # a wrong password rehashes nothing
        r = await c.post("/api/v1/auth/login", json={"email": who.email, "password": "not-the-password-at-all"})
        assert r.status_code == 401 and r.json()["code"] == "auth.wrong_password"
        assert await _stored_hash(database, who.id) == weak
        # the right one signs in and leaves a hash with today's parameters that still verifies
        await login(c, who.email, PASSWORD)
        current = await _stored_hash(database, who.id)
        assert current != weak and current.startswith("$argon2id$")
        assert not PasswordHasher().check_needs_rehash(current) and PasswordHasher().verify(current, PASSWORD)
        # already current: left as it is
        await login(c, who.email, PASSWORD)
        assert await _stored_hash(database, who.id) == current


class _Watching(PasswordHasher):
    """The service's hasher, noting for each call whether it ran on an event loop's thread and,
    for verifications, what another connection sees of the user's row meanwhile."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.database = database
        self.calls: list[dict[str, Any]] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.calls.append({"call": "hash", "on_loop": _on_the_loop(), "thread": threading.get_ident()})
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002 - argon2's name
        on_loop = _on_the_loop()
        seen = None if on_loop else asyncio.run(self._row_meanwhile(str(hash)))
        self.calls.append({"call": "verify", "on_loop": on_loop, "thread": threading.get_ident(), "row": seen})
        return super().verify(hash, password)

    async def _row_meanwhile(self, password_hash: str) -> tuple[int, ...] | str:
        """Lock the row being verified from another connection, without waiting: it must be free."""
        conn = await pg_connect(self.database.settings, self.database.secrets)
        try:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT failed_logins FROM users WHERE password_hash = $1 FOR UPDATE NOWAIT", password_hash
                )
                return tuple(r["failed_logins"] for r in rows)
        except Exception as exc:  # noqa: BLE001 - the lock error is the finding
            return type(exc).__name__
        finally:
            await conn.close()


async def test_argon2_runs_off_the_event_loop_and_under_no_row_lock(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        watching = _Watching(database)
        monkeypatch.setattr(identity, "_hasher", watching)
        who = await person(c, root, "learner")  # creates the account (hash), then signs in (verify)
        wrong = [
            c.post("/api/v1/auth/login", json={"email": who.email, "password": f"wrong-password-{n:04d}"}) for n in range(3)
        ]
        answers = await asyncio.gather(*wrong, c.get("/api/v1/me", headers=who.h))
        assert [r.status_code for r in answers] == [401, 401, 401, 200]
        await login(c, who.email, PASSWORD)
    hashes = [call for call in watching.calls if call["call"] == "hash"]
    verifies = [call for call in watching.calls if call["call"] == "verify"]
    assert len(hashes) == 1 and len(verifies) == 5
    assert not any(call["on_loop"] for call in watching.calls), watching.calls
    # while Argon2 ran, another transaction could lock the row at once, and saw this attempt
    # already counted: the claim was committed before the slow call
    first = verifies[0]["row"]
    assert first == (1,), verifies
    assert all(isinstance(call["row"], tuple) for call in verifies), verifies
    # each parallel wrong guess was counted before its verification (the right sign-in before
    # them cleared the first claim); the right password afterwards sees all four, then clears them
    assert all(call["row"][0] in (1, 2, 3) for call in verifies[1:4]), verifies
    assert verifies[4]["row"] == (4,)
    conn = await pg_connect(database.settings, database.secrets)
    try:
        row = await conn.fetchrow("SELECT failed_logins, locked_until FROM users WHERE email = $1", who.email)
    finally:
        await conn.close()
    assert (row["failed_logins"], row["locked_until"]) == (0, None)
