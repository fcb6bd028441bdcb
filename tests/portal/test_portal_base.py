"""The portal's shared behaviour, in-process on the real database: sign-in and sign-out, the
language (profile, cookie, Accept-Language), CSRF on forms and on cookie-authenticated API calls,
HTML error pages, and the security headers."""

from __future__ import annotations

import re

from lmsd.identity import service as identity
from tests.api import PASSWORD, admin, client, person
from tests.db import Database

ORIGIN = {"origin": "http://a.example"}


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found, "no csrf-token meta in the page"
    return found.group(1)


async def test_sign_in_language_and_csrf(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        r = await c.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        r = await c.get("/login", headers={"accept-language": "fr-CA,fr;q=0.9,en;q=0.5"})
        assert r.status_code == 200 and '<html lang="fr">' in r.text and "Se connecter" in r.text
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        # the language picker of a visitor must come from the portal
        r = await c.post("/language", data={"lang": "es"}, headers={"origin": "http://evil.example"})
        assert r.status_code == 422 and "lmsd_lang" not in r.headers.get("set-cookie", "")
        r = await c.post("/language", data={"lang": "fr"}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and "lmsd_lang=fr" in r.headers["set-cookie"]
        c.cookies.delete("lmsd_lang")
        # bad input: nothing, a wrong password, another site's form
        r = await c.post("/login", data={"email": "", "password": ""}, headers=ORIGIN)
        assert r.status_code == 422 and "Enter your e-mail address and password." in r.text
        r = await c.post("/login", data={"email": learner.email, "password": "wrong"}, headers=ORIGIN)
        assert r.status_code == 401 and "not right" in r.text and "lmsd_session" not in r.headers.get("set-cookie", "")
        r = await c.post("/login", data={"email": learner.email, "password": PASSWORD}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403
        # a good sign-in goes where it was asked to, but never off the site
        r = await c.post("/login", data={"email": learner.email, "password": PASSWORD, "next": "//evil.example/x"},
                         headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie.replace("samesite=strict", "SameSite=Strict")
        r = await c.get("/login?next=/catalog", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/catalog"
        # errors are pages in the visitor's language, not problem+json
        r = await c.get("/no-such-page-at-all", headers={"accept-language": "es"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "Página no encontrada" in r.text


async def test_language_picker_and_cookie_api_csrf(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        r = await c.post("/login", data={"email": learner.email, "password": PASSWORD}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303
        signed_in_error_page = await c.get("/definitely/not/here")
        token = _csrf(signed_in_error_page.text)
        assert token
        r = await c.post("/language", data={"lang": "xx", "csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 422
        r = await c.post("/language", data={"lang": "es", "csrf_token": "forged"}, headers=ORIGIN)
        assert r.status_code == 403
        r = await c.post("/language", data={"lang": "es", "csrf_token": token},
                         headers={**ORIGIN, "referer": "http://a.example/catalog"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/catalog"
        # Spanish now, whatever the browser prefers (the profile's language is stored too: the
        # learner's pages read it, tests/portal/test_portal_learner.py)
        page = await c.get("/definitely/not/here", headers={"accept-language": "fr"})
        assert '<html lang="es">' in page.text and "Página no encontrada" in page.text
        # the API with the session cookie: reads work, writes need the page's token
        assert (await c.get("/api/v1/me")).status_code == 200
        r = await c.post("/api/v1/courses", json={"code": "X1", "title": "t"}, headers=ORIGIN)
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
        r = await c.post("/api/v1/learning/events", json={"events": []}, headers={**ORIGIN, "x-csrf-token": token})
        assert r.status_code == 400  # past the CSRF check, refused as bad input
        # signing out needs the token too
        assert (await c.post("/logout", data={}, headers=ORIGIN)).status_code == 403
        r = await c.post("/logout", data={"csrf_token": token}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert (await c.get("/api/v1/me")).status_code == 401


async def test_password_reset_page(database: Database) -> None:
    async with client(database) as c:
        adm = await admin(c, database)
        learner = await person(c, adm, "learner")
        r = await c.post(f"/api/v1/users/{learner.id}/password-reset", headers=adm.h)
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        page = await c.get(f"/password-reset?token={token}")
        assert page.status_code == 200 and f'value="{token}"' in page.text
        new = "a-brand-new-passphrase"
        # bad input: too short, not the same twice, a forged token, another site's form
        r = await c.post("/password-reset", data={"token": token, "password": "short", "confirm": "short"}, headers=ORIGIN)
        assert r.status_code == 422 and "at least 12 characters" in r.text and 'aria-invalid="true"' in r.text
        assert "At least 12 characters." in page.text  # the hint: the service's limit, not a copy
        long = "x" * (identity.PASSWORD_MAX + 1)
        r = await c.post("/password-reset", data={"token": token, "password": long, "confirm": long}, headers=ORIGIN)
        assert r.status_code == 422 and "at most 1,024 characters" in r.text and long not in r.text
        c.cookies.set("lmsd_lang", "fr")  # the service's code, the page's language
        r = await c.post("/password-reset", data={"token": token, "password": "short", "confirm": "short"}, headers=ORIGIN)
        assert r.status_code == 422 and "doit avoir au moins 12 caractères" in r.text
        c.cookies.delete("lmsd_lang")
        r = await c.post("/password-reset", data={"token": token, "password": new, "confirm": new + "x"}, headers=ORIGIN)
        assert r.status_code == 422 and "not the same" in r.text
        r = await c.post("/password-reset", data={"token": token + "x", "password": new, "confirm": new}, headers=ORIGIN)
        assert r.status_code == 400 and "invalid, used or expired" in r.text
        r = await c.post("/password-reset", data={"token": token, "password": new, "confirm": new},
                         headers={"origin": "http://evil.example"})
        assert r.status_code == 400
        # nothing changed so far: the old password still works
        r = await c.post("/api/v1/auth/login", json={"email": learner.email, "password": PASSWORD})
        assert r.status_code == 200
        r = await c.post("/password-reset", data={"token": token, "password": new, "confirm": new},
                         headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?reset=1"
        assert "new password is saved" in (await c.get("/login?reset=1")).text
        r = await c.post("/login", data={"email": learner.email, "password": new}, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303
        # a token is good once
        r = await c.post("/password-reset", data={"token": token, "password": new, "confirm": new}, headers=ORIGIN)
        assert r.status_code == 400
