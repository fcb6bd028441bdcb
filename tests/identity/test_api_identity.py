"""Sign-in, refresh rotation with reuse detection, logout, password reset, throttling, bad tokens."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api import PASSWORD, admin, client, login, person
from tests.db import Database


async def test_refresh_rotates_and_reuse_revokes_the_family(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        first = await login(c, learner.email, PASSWORD)
        r = await c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        me = await c.get("/api/v1/me", headers={"authorization": f"Bearer {second['access_token']}"})
        assert me.json()["email"] == learner.email
        # The old token is replayed (stolen?): refused, and the whole family dies with it.
        replay = await c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert replay.status_code == 401 and "revoked" in replay.json()["detail"]
        dead = await c.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert dead.status_code == 401
        # Another sign-in is another family and still works.
        other = await login(c, learner.email, PASSWORD)
        assert (await c.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 200


async def test_logout_revokes(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        tok = await login(c, learner.email, PASSWORD)
        assert (await c.post("/api/v1/auth/logout", json={"refresh_token": tok["refresh_token"]})).status_code == 204
        assert (await c.post("/api/v1/auth/refresh", json={"refresh_token": tok["refresh_token"]})).status_code == 401
        assert (await c.post("/api/v1/auth/logout", json={"refresh_token": "garbage"})).status_code == 204


async def test_password_reset(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        session = await login(c, learner.email, PASSWORD)
        r = await c.post(f"/api/v1/users/{learner.id}/password-reset", headers=adm.h)
        assert r.status_code == 201
        token = r.json()["token"]
        short = await c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "short"})
        assert short.status_code == 400
        ok = await c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "a-brand-new-passphrase"})
        assert ok.status_code == 204
        again = await c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "another-passphrase-1"})
        assert again.status_code == 401  # one-time
        assert (await c.post("/api/v1/auth/login", json={"email": learner.email, "password": PASSWORD})).status_code == 401
        await login(c, learner.email, "a-brand-new-passphrase")
        # The reset ended the sessions made with the old password.
        assert (await c.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})).status_code == 401
        for bad in ("not-a-token", f"{uuid.uuid4()}.nope"):
            r = await c.post("/api/v1/auth/password-reset/confirm", json={"token": bad, "new_password": "x" * 20})
            assert r.status_code == 401


async def test_brute_force_is_throttled(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        codes = [
            (await c.post("/api/v1/auth/login", json={"email": learner.email, "password": f"guess-{i}"})).status_code
            for i in range(7)
        ]
        assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
        locked = await c.post("/api/v1/auth/login", json={"email": learner.email, "password": PASSWORD})
        assert locked.status_code == 429 and "try again" in locked.json()["detail"]  # even the right password waits


def _b64(data: dict) -> str:  # type: ignore[type-arg]
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_bad_tokens_are_refused(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        good = jwt.decode(adm.token, options={"verify_signature": False})
        header = jwt.get_unverified_header(adm.token)
        other_key = Ed25519PrivateKey.generate()
        real_key = serialization.load_pem_private_key(database.secrets.jwt_signing_key_pem.encode(), None)
        now = int(time.time())
        forged = {
            # signed with the campus's own key, so only the claim is wrong
            "expired": jwt.encode({**good, "exp": now - 10}, real_key, algorithm="EdDSA", headers=header),
            "wrong audience": jwt.encode({**good, "aud": "someone-else"}, real_key, algorithm="EdDSA", headers=header),
            "wrong issuer": jwt.encode({**good, "iss": "https://evil.example"}, real_key, algorithm="EdDSA", headers=header),
            "no campus": jwt.encode({k: v for k, v in good.items() if k != "campus"}, real_key, algorithm="EdDSA", headers=header),
            "wrong key": jwt.encode(good, other_key, algorithm="EdDSA", headers=header),
            "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}.",
            "malformed": "not.a.jwt",
            "empty": "",
            "tampered role": adm.token.rsplit(".", 2)[0] + "." + _b64({**good, "role": "admin", "sub": str(uuid.uuid4())}) + "." + adm.token.rsplit(".", 1)[1],
        }
        for name, token in forged.items():
            r = await c.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 401, name
            assert r.headers["content-type"].startswith("application/problem+json"), name
        assert (await c.get("/api/v1/me")).status_code == 401
        assert (await c.get("/api/v1/me", headers=adm.h)).status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"email": 5, "password": []}', "application/json", 400),
        (b'{"email": "a@b", "password": "x", "role": "admin"}', "application/json", 400),
        (b"[]", "application/json", 400),
        (b'{"email": "a@b", "password": "' + b"x" * (2 * 1024 * 1024) + b'"}', "application/json", 413),
    ],
)
async def test_malformed_bodies(database: Database, body: bytes, content_type: str, status: int) -> None:
    async with client(database) as c:
        r = await c.post("/api/v1/auth/login", content=body, headers={"content-type": content_type})
        assert r.status_code == status
        assert r.headers["content-type"].startswith("application/problem+json")
