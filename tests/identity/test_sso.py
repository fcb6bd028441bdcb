"""OpenID Connect sign-in against a real (test) identity provider on loopback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx

from tests.api import admin, client, person
from tests.db import Database
from tests.oidc_idp import OidcTestProvider


async def _register(c, adm, idp: OidcTestProvider, slug: str, **extra: object) -> dict:  # type: ignore[no-untyped-def]
    r = await c.post("/api/v1/sso/providers", headers=adm.h, json={
        "slug": slug, "name": "University IdP", "issuer": idp.issuer, "client_id": idp.client_id,
        "client_secret": idp.client_secret, **extra,
    })
    assert r.status_code == 201, r.text
    assert "client_secret" not in r.text
    return r.json()


async def _sign_in(c, provider: dict, tamper_state: bool = False) -> httpx.Response:  # type: ignore[no-untyped-def]
    start = await c.get(provider["login_path"], follow_redirects=False)
    assert start.status_code == 302
    to_idp = start.headers["location"]
    q = parse_qs(urlparse(to_idp).query)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"] and q["state"]
    async with httpx.AsyncClient() as browser:  # the browser at the IdP
        back = await browser.get(to_idp, follow_redirects=False)
    assert back.status_code == 302
    callback = urlparse(back.headers["location"])
    query = callback.query.replace("state=", "state=x") if tamper_state else callback.query
    return await c.get(f"{callback.path}?{query}", follow_redirects=False)


async def test_first_sign_in_creates_the_account_then_reuses_it(database: Database) -> None:
    with OidcTestProvider(email="Ada@Uni.example") as idp:
        async with client(database) as c:
            adm = await admin(c, database)
            provider = await _register(c, adm, idp, "uni-a")
            done = await _sign_in(c, provider)
            assert done.status_code == 303 and done.headers["location"] == "/"
            session = done.cookies.get("lmsd_session") or c.cookies.get("lmsd_session")
            assert session
            me = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {session}"})).json()
            assert me["email"] == "ada@uni.example" and me["role"] == "learner" and me["display_name"] == "Ada Lovelace"
            again = await _sign_in(c, provider)
            token2 = again.cookies.get("lmsd_session") or c.cookies.get("lmsd_session")
            me2 = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {token2}"})).json()
            assert me2["id"] == me["id"]  # same account, not a duplicate
            # An SSO account has no password that could match.
            r = await c.post("/api/v1/auth/login", json={"email": "ada@uni.example", "password": "!sso"})
            assert r.status_code == 401


async def test_tampered_or_incomplete_sign_ins_are_refused(database: Database) -> None:
    with OidcTestProvider(email="mallory@uni.example") as idp:
        async with client(database) as c:
            adm = await admin(c, database)
            provider = await _register(c, adm, idp, "uni-b")
            bad_state = await _sign_in(c, provider, tamper_state=True)
            assert bad_state.status_code == 401
            c.cookies.clear()
            no_cookie = await c.get(provider["login_path"].replace("/login", "/callback") + "?code=x&state=y")
            assert no_cookie.status_code == 401 and no_cookie.headers["content-type"].startswith("application/problem+json")
            idp.tamper_nonce = True
            replayed = await _sign_in(c, provider)
            assert replayed.status_code == 401 and "nonce" in replayed.json()["detail"]
            missing = await c.get(f"/api/v1/sso/{database.settings.campus.id}/nope/login")
            assert missing.status_code == 404


async def test_unverified_email_and_provider_management(database: Database) -> None:
    with OidcTestProvider(email="eve@uni.example", verified=False) as idp:
        async with client(database) as c:
            adm = await admin(c, database)
            learner = await person(c, adm, "learner")
            body = {"slug": "x", "name": "X", "issuer": idp.issuer, "client_id": "a", "client_secret": "b"}
            assert (await c.post("/api/v1/sso/providers", headers=learner.h, json=body)).status_code == 403
            bad = await c.post("/api/v1/sso/providers", headers=adm.h, json={**body, "issuer": "ftp://x.example"})
            assert bad.status_code == 422
            provider = await _register(c, adm, idp, "uni-c")
            refused = await _sign_in(c, provider)
            assert refused.status_code == 401 and "verified" in refused.json()["detail"]
            listed = (await c.get("/api/v1/sso/providers", headers=adm.h)).json()
            assert "uni-c" in [p["slug"] for p in listed] and "client_secret" not in str(listed)


async def test_an_unconfirmed_email_never_opens_an_existing_account(database: Database) -> None:
    """The provider hands out the admin's address: only email_verified: true (or a provider the
    campus admin trusts for e-mail) may sign in to that account."""
    admin_email = database.settings.campus.admin_email
    with OidcTestProvider(email=admin_email.upper(), verified=None) as idp:
        async with client(database) as c:
            adm = await admin(c, database)
            users_before = (await c.get("/api/v1/users?limit=100", headers=adm.h)).json()
            provider = await _register(c, adm, idp, "uni-untrusted")
            assert provider["trust_email"] is False  # the default
            for claim in (None, False, "true", 1):  # left out, false, and not a JSON true
                if claim is None:
                    idp.person.pop("email_verified", None)
                else:
                    idp.person["email_verified"] = claim
                c.cookies.clear()
                refused = await _sign_in(c, provider)
                assert refused.status_code == 401, (claim, refused.text)
                assert refused.headers["content-type"].startswith("application/problem+json")
                body = refused.json()
                assert body["code"] == "sso.email_unverified", body
                assert admin_email in body["detail"] and "email_verified" in body["detail"]
                assert "lmsd_session" not in refused.cookies
            # nothing was linked or created
            assert (await c.get("/api/v1/users?limit=100", headers=adm.h)).json() == users_before
            # the provider confirms the address: the account that has it signs in
            idp.person["email_verified"] = True
            c.cookies.clear()
            done = await _sign_in(c, provider)
            assert done.status_code == 303, done.text
            session = done.cookies.get("lmsd_session") or c.cookies.get("lmsd_session")
            me = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {session}"})).json()
            assert me["id"] == adm.id

            # a provider the campus admin trusts for e-mail: its addresses count as verified
            idp.person.pop("email_verified")
            trusted = await _register(c, adm, idp, "uni-trusted", trust_email=True)
            assert trusted["trust_email"] is True
            listed = {p["slug"]: p["trust_email"] for p in (await c.get("/api/v1/sso/providers", headers=adm.h)).json()}
            assert listed["uni-trusted"] is True and listed["uni-untrusted"] is False
            c.cookies.clear()
            done = await _sign_in(c, trusted)
            assert done.status_code == 303, done.text
            session = done.cookies.get("lmsd_session") or c.cookies.get("lmsd_session")
            assert (await c.get("/api/v1/me", headers={"authorization": f"Bearer {session}"})).json()["id"] == adm.id
            # ... but not when the provider itself says the address is not confirmed
            idp.person["email_verified"] = False
            c.cookies.clear()
            refused = await _sign_in(c, trusted)
            assert refused.status_code == 401 and refused.json()["code"] == "sso.email_unverified"
