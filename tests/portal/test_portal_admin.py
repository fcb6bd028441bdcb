"""The campus admin's portal pages, in-process on the real database: accounts (create with each
kind of bad input, roles, no self-demotion, password reset, pages), campus settings (name,
language of anonymous pages, logo by magic bytes with its bad inputs, sign-in providers), the
health page without a supervisor, CSRF, the 403 page for other roles and another campus's ids
(404).

Campus A is shared by every module of the session, so what changes its look (name, logo) runs on
a campus B made here; the default-language check on A puts it back."""

from __future__ import annotations

import os
import re
import struct
import uuid
import zlib
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from lmsd.portal import admin as admin_pages
from tests.api import PASSWORD, Person, admin, client, login, person
from tests.db import Database
from tests.support import ADMIN_PASSWORD

ORIGIN = {"origin": "http://a.example"}
Client = AsyncTestClient[Litestar]


def png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG (no imaging library): signature, IHDR, one zlib IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found and found.group(1), "no csrf-token in the page"
    return found.group(1)


async def _portal_sign_in(c: Client, email: str, password: str) -> str:
    """Sign in through the portal's form (campus A); returns the page's CSRF token."""
    r = await c.post("/login", data={"email": email, "password": password}, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303, r.text
    return _csrf((await c.get("/login?next=/catalog", follow_redirects=True)).text)


async def _portal_as(c: Client, who: Person) -> str:
    """The portal session of ``who`` (any campus): the session cookie is the access token."""
    c.cookies.set("lmsd_session", who.token)
    r = await c.get("/admin")
    assert r.status_code in (200, 403), r.text
    return _csrf(r.text)


async def _campus_b(c: Client, root: Person) -> tuple[str, Person]:
    host = f"b-{uuid.uuid4().hex[:8]}.example"
    email = f"admin@{host}"
    r = await c.post("/api/v1/campuses", headers=root.h,
                     json={"name": "Campus B", "host": host, "admin_email": email, "admin_password": PASSWORD})
    assert r.status_code == 201, r.text
    b_id = r.json()["id"]
    tok = await login(c, email, PASSWORD, b_id)
    me = (await c.get("/api/v1/me", headers={"authorization": f"Bearer {tok['access_token']}"})).json()
    return b_id, Person(me["id"], email, tok["access_token"], "admin")


async def _emails(c: Client, who: Person) -> dict[str, str]:
    """e-mail → role of every account of ``who``'s campus, through the JSON API."""
    found: dict[str, str] = {}
    cursor = ""
    while True:
        r = await c.get(f"/api/v1/users?limit=100{'&cursor=' + cursor if cursor else ''}", headers=who.h)
        assert r.status_code == 200, r.text
        found.update({u["email"]: u["role"] for u in r.json()["items"]})
        cursor = r.json()["next_cursor"]
        if not cursor:
            return found


async def test_users_create_validate_roles_reset_and_csrf(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        b_id, b_admin = await _campus_b(c, root)
        learner = await person(c, b_admin, "learner", b_id)
        token = await _portal_as(c, b_admin)

        r = await c.get("/admin/users")
        assert r.status_code == 200 and "<h1>Users</h1>" in r.text
        assert learner.email in r.text and b_admin.email in r.text
        assert root.email not in r.text  # campus A's accounts are not listed
        before = await _emails(c, b_admin)

        good = {"email": "new.teacher@b.example", "display_name": "New Teacher", "role": "instructor",
                "password": "a-long-enough-secret", "csrf_token": token}
        bad_inputs: list[tuple[dict[str, str], str, str]] = [
            ({"email": "not-an-email"}, "email", "Enter an e-mail address like name@example.org."),
            ({"email": ""}, "email", "Enter an e-mail address."),
            ({"password": "short"}, "password", "A password needs at least 12 characters."),
            ({"display_name": "  "}, "display_name", "Enter the person&#39;s name."),
            ({"display_name": "x" * 201}, "display_name", "A name may have at most 200 characters."),
            ({"role": "root"}, "role", "Choose a role from the list."),
            ({"email": learner.email.upper()}, "email", "An account with this e-mail address already exists."),
        ]
        for change, name, message in bad_inputs:
            r = await c.post("/admin/users", data={**good, **change}, headers=ORIGIN)
            assert r.status_code == 422, (change, r.status_code)
            assert message in r.text, change
            assert f'id="e-{name}"' in r.text and 'aria-invalid="true"' in r.text and "error-summary" in r.text
            assert good["password"] not in r.text and 'value="short"' not in r.text  # never echoed
            if name != "display_name":
                assert 'value="New Teacher"' in r.text  # what was typed is kept
        assert await _emails(c, b_admin) == before  # nothing was created

        # no CSRF token, or a forged one: refused, nothing created
        r = await c.post("/admin/users", data={k: v for k, v in good.items() if k != "csrf_token"}, headers=ORIGIN)
        assert r.status_code == 403 and "Not allowed" in r.text
        r = await c.post("/admin/users", data={**good, "csrf_token": "forged"}, headers=ORIGIN)
        assert r.status_code == 403
        assert await _emails(c, b_admin) == before

        r = await c.post("/admin/users", data=good, headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/users?created=")
        new_id = r.headers["location"].split("=", 1)[1]
        r = await c.get(r.headers["location"])
        assert "Account created for new.teacher@b.example." in r.text and 'role="status"' in r.text
        assert (await _emails(c, b_admin))["new.teacher@b.example"] == "instructor"
        await login(c, "new.teacher@b.example", good["password"], b_id)  # the initial password works

        # roles: change one; a bad role; CSRF; no admin can demote themselves
        r = await c.post(f"/admin/users/{new_id}/role", data={"role": "learner", "csrf_token": token}, headers=ORIGIN,
                         follow_redirects=False)
        assert r.status_code == 303
        r = await c.get(r.headers["location"])
        assert "The role of new.teacher@b.example is now Learner" in r.text
        assert (await _emails(c, b_admin))["new.teacher@b.example"] == "learner"
        r = await c.post(f"/admin/users/{new_id}/role", data={"role": "owner", "csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 422 and "Choose a role from the list." in r.text
        r = await c.post(f"/admin/users/{new_id}/role", data={"role": "admin"}, headers=ORIGIN)
        assert r.status_code == 403
        assert (await _emails(c, b_admin))["new.teacher@b.example"] == "learner"
        r = await c.post(f"/admin/users/{b_admin.id}/role", data={"role": "learner", "csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 409 and "You cannot remove your own administrator role." in r.text
        assert (await _emails(c, b_admin))[b_admin.email] == "admin"
        r = await c.post(f"/admin/users/{uuid.uuid4()}/role", data={"role": "admin", "csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 404 and "Page not found" in r.text

        # password reset: the token is shown once and works
        r = await c.post(f"/admin/users/{learner.id}/password-reset", data={"csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 200 and "sends no e-mail" in r.text
        found = re.search(r"<code>([^<]+)</code>", r.text)
        assert found and found.group(1).startswith(b_id + ".")
        r = await c.post("/api/v1/auth/password-reset/confirm", json={"token": found.group(1), "new_password": "brand-new-password-1"})
        assert r.status_code == 204, r.text
        await login(c, learner.email, "brand-new-password-1", b_id)
        assert found.group(1) not in (await c.get("/admin/users")).text  # shown only that once

        # keyset pages through the service's cursor; a broken cursor is an error page, not a 500
        monkeypatch.setattr(admin_pages, "USERS_PER_PAGE", 2)
        first = await c.get("/admin/users")
        next_link = re.search(r'href="/admin/users\?cursor=([^"]+)"', first.text)
        assert next_link, "no next page link with 3 accounts and 2 per page"
        second = await c.get(f"/admin/users?cursor={next_link.group(1)}")
        assert second.status_code == 200 and 'href="/admin/users">First page' in second.text

        def rows(html: str) -> set[str]:
            return set(re.findall(r'<th scope="row">([^<]+)</th>', html))

        assert rows(first.text) and rows(second.text) and not rows(first.text) & rows(second.text)
        r = await c.get("/admin/users?cursor=garbage!")
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")


async def test_admin_pages_only_for_admins_of_the_campus(database: Database) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        learner = await person(c, root, "learner")
        instructor = await person(c, root, "instructor")
        # nobody signed in: to the sign-in form
        r = await c.get("/admin/users", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/admin/users")
        for who in (learner, instructor):
            token = await _portal_sign_in(c, who.email, PASSWORD)
            for path in ("/admin", "/admin/users", "/admin/campus", "/admin/health"):
                r = await c.get(path)
                assert r.status_code == 403 and "Not allowed" in r.text and "<table" not in r.text, (who.role, path)
            posts = {
                "/admin/users": {"email": "x@a.example", "display_name": "X", "role": "admin", "password": "p" * 20},
                f"/admin/users/{who.id}/role": {"role": "admin"},
                f"/admin/users/{root.id}/password-reset": {},
                "/admin/campus": {"name": "Taken over", "default_locale": "en"},
                "/admin/campus/logo/remove": {},
                "/admin/sso": {"slug": "x", "provider_name": "X", "issuer": "https://x.example", "client_id": "x",
                               "client_secret": "x", "scopes": "openid", "default_role": "admin"},
            }
            for path, data in posts.items():
                r = await c.post(path, data={**data, "csrf_token": token}, headers=ORIGIN)
                assert r.status_code == 403, (who.role, path, r.status_code)
            assert "x@a.example" not in await _emails(c, root)
            assert (await _emails(c, root))[who.email] == who.role
            r = await c.post("/logout", data={"csrf_token": token}, headers=ORIGIN)
        # the campus admin signs in through the form and sees the overview
        token = await _portal_sign_in(c, database.settings.campus.admin_email, ADMIN_PASSWORD)
        r = await c.get("/admin")
        assert r.status_code == 200 and "<h1>Administration</h1>" in r.text
        for link in ('href="/admin/users"', 'href="/admin/campus"', 'href="/admin/health"'):
            assert link in r.text


async def test_another_campus_ids_are_not_found(database: Database) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        a_learner = await person(c, root, "learner")
        r = await c.post("/api/v1/sso/providers", headers=root.h, json={
            "slug": f"a-{uuid.uuid4().hex[:6]}", "name": "A's IdP", "issuer": "https://idp.a.example",
            "client_id": "a", "client_secret": "a-secret"})
        assert r.status_code == 201, r.text
        a_provider = r.json()["id"]
        b_id, b_admin = await _campus_b(c, root)
        token = await _portal_as(c, b_admin)
        page = (await c.get("/admin/users")).text
        assert a_learner.email not in page and root.email not in page
        for path, data in (
            (f"/admin/users/{a_learner.id}/role", {"role": "admin"}),
            (f"/admin/users/{a_learner.id}/password-reset", {}),
            (f"/admin/sso/{a_provider}/enabled", {"enabled": "false"}),
        ):
            r = await c.post(path, data={**data, "csrf_token": token}, headers=ORIGIN)
            assert r.status_code == 404 and "Page not found" in r.text, path
        assert (await _emails(c, root))[a_learner.email] == "learner"
        providers = (await c.get("/admin/campus")).text
        assert "A&#39;s IdP" not in providers
        r = await c.get(f"/admin/users?created={a_learner.id}")
        assert r.status_code == 200 and a_learner.email not in r.text
        # campus A's sign-in page still offers A's provider (not disabled by B)
        c.cookies.delete("lmsd_session")
        assert "Sign in with A&#39;s IdP" in (await c.get("/login")).text
        # A's admin turns it off again (campus A is shared with the other modules)
        token = await _portal_sign_in(c, database.settings.campus.admin_email, ADMIN_PASSWORD)
        r = await c.post(f"/admin/sso/{a_provider}/enabled", data={"enabled": "false", "csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 200 and "no longer offered" in r.text
        c.cookies.delete("lmsd_session")
        assert "A&#39;s IdP" not in (await c.get("/login")).text


async def test_campus_name_logo_and_providers(database: Database) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        _b_id, b_admin = await _campus_b(c, root)
        token = await _portal_as(c, b_admin)
        r = await c.get("/admin/campus")
        assert r.status_code == 200 and 'value="Campus B"' in r.text

        # name and language: bad input keeps what was typed
        for data, name, message in (
            ({"name": " ", "default_locale": "fr"}, "name", "Enter the campus name."),
            ({"name": "N" * 201, "default_locale": "fr"}, "name", "A name may have at most 200 characters."),
            ({"name": "Renamed", "default_locale": "de"}, "default_locale", "Choose one of the languages in the list."),
        ):
            r = await c.post("/admin/campus", data={**data, "csrf_token": token}, headers=ORIGIN)
            assert r.status_code == 422 and message in r.text and f'id="e-{name}"' in r.text, data
        assert 'value="Renamed"' in r.text
        r = await c.post("/admin/campus", data={"name": "Renamed", "default_locale": "es"}, headers=ORIGIN)
        assert r.status_code == 403
        r = await c.post("/admin/campus", data={"name": "Université B", "default_locale": "es", "csrf_token": token},
                         headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303
        r = await c.get(r.headers["location"])
        assert "<span>Université B</span>" in r.text and "The campus settings are saved." in r.text
        assert re.search(r'<option value="es"[^>]*selected', r.text)
        assert "<title>Campus settings · Université B</title>" in r.text

        # logo: none yet; a good PNG; bad files leave it unchanged
        r = await c.get("/campus/logo")
        assert r.status_code == 404 and "Page not found" in r.text
        assert 'src="/campus/logo' not in (await c.get("/admin")).text
        image = png()
        r = await c.post("/admin/campus/logo", data={"csrf_token": token}, files={"logo": ("logo.png", image, "image/png")},
                         headers=ORIGIN, follow_redirects=False)
        assert r.status_code == 303, r.text
        r = await c.get("/campus/logo")
        assert r.status_code == 200 and r.content == image and r.headers["content-type"] == "image/png"
        assert r.headers["cache-control"] == "public, max-age=300" and r.headers["x-content-type-options"] == "nosniff"
        assert (await c.get("/campus/logo", headers={"if-none-match": r.headers["etag"]})).status_code == 304
        assert '<img src="/campus/logo?v=' in (await c.get("/admin")).text
        svg_script = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        svg_onload = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'
        svg_href = b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"><rect/></a></svg>'
        for name, content, ctype, message in (
            ("logo.png", b"just some text, not an image\n", "image/png", "This file is not a PNG, JPEG, WebP or SVG image."),
            ("huge.png", image + os.urandom(300 * 1024), "image/png", "The image is too large: at most 256 KiB."),
            ("evil.svg", svg_script, "image/svg+xml", "This SVG contains scripts or event handlers"),
            ("evil2.svg", svg_onload, "image/svg+xml", "This SVG contains scripts or event handlers"),
            ("evil3.svg", svg_href, "image/svg+xml", "This SVG contains scripts or event handlers"),
            ("empty.png", b"", "image/png", "Choose an image file."),
        ):
            r = await c.post("/admin/campus/logo", data={"csrf_token": token}, files={"logo": (name, content, ctype)}, headers=ORIGIN)
            assert r.status_code == 422 and message in r.text and 'id="e-logo"' in r.text, name
            assert (await c.get("/campus/logo")).content == image, name
        r = await c.post("/admin/campus/logo", data={}, files={"logo": ("other.png", png(2, 2), "image/png")}, headers=ORIGIN)
        assert r.status_code == 403 and (await c.get("/campus/logo")).content == image
        # a clean SVG and a JPEG are fine; the SVG is served with a policy that runs nothing
        svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><rect width="4" height="4" fill="#1d4f91"/></svg>'
        r = await c.post("/admin/campus/logo", data={"csrf_token": token}, files={"logo": ("logo.txt", svg, "text/plain")}, headers=ORIGIN)
        assert r.status_code == 200 and "The new logo is saved." in r.text  # followed the redirect
        r = await c.get("/campus/logo")
        assert r.headers["content-type"] == "image/svg+xml" and r.content == svg
        assert r.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
        await c.post("/admin/campus/logo", data={"csrf_token": token}, files={"logo": ("x.bin", jpeg, "application/octet-stream")}, headers=ORIGIN)
        assert (await c.get("/campus/logo")).headers["content-type"] == "image/jpeg"
        r = await c.post("/admin/campus/logo/remove", data={"csrf_token": token}, headers=ORIGIN)
        assert r.status_code == 200 and "The logo is removed." in r.text
        assert (await c.get("/campus/logo")).status_code == 404

        # sign-in providers: each missing field is named; the secret is never shown again
        full = {"provider_name": "B University", "slug": "b-uni", "issuer": "https://login.b.example/realms/main",
                "client_id": "lmsd-portal", "client_secret": "very-secret-value", "scopes": "openid email profile",
                "default_role": "learner", "csrf_token": token}
        r = await c.post("/admin/sso", data={"csrf_token": token, "scopes": "", "default_role": "learner"}, headers=ORIGIN)
        assert r.status_code == 422
        for name in ("provider_name", "slug", "issuer", "client_id", "client_secret", "scopes"):
            assert f'id="e-{name}"' in r.text, name
        for change, name in (({"slug": "Bad Slug!"}, "slug"), ({"issuer": "http://login.b.example"}, "issuer"),
                             ({"scopes": "email profile"}, "scopes"), ({"default_role": "root"}, "default_role")):
            r = await c.post("/admin/sso", data={**full, **change}, headers=ORIGIN)
            assert r.status_code == 422 and f'id="e-{name}"' in r.text, change
            assert "very-secret-value" not in r.text and 'value="lmsd-portal"' in r.text
        assert "<code>b-uni</code>" not in (await c.get("/admin/campus")).text  # nothing was saved
        r = await c.post("/admin/sso", data=full, headers=ORIGIN)
        assert r.status_code == 200 and "The sign-in provider is added." in r.text
        assert "<code>b-uni</code>" in r.text and "very-secret-value" not in r.text and "<td>set</td>" in r.text
        r = await c.post("/admin/sso", data=full, headers=ORIGIN)
        assert r.status_code == 422 and "already has a provider with this short name" in r.text
        provider_id = re.search(r'action="/admin/sso/([0-9a-f-]+)/enabled"', r.text)
        assert provider_id
        r = await c.post(f"/admin/sso/{provider_id.group(1)}/enabled", data={"enabled": "false", "csrf_token": token}, headers=ORIGIN)
        assert "no longer offered" in r.text and ">Disabled<" in r.text
        r = await c.post(f"/admin/sso/{provider_id.group(1)}/enabled", data={"enabled": "true"}, headers=ORIGIN)
        assert r.status_code == 403
        r = await c.post(f"/admin/sso/{provider_id.group(1)}/enabled", data={"enabled": "true", "csrf_token": token}, headers=ORIGIN)
        assert "is offered on the sign-in page" in r.text and ">Enabled<" in r.text
        overview = (await c.get("/admin")).text
        assert re.search(r"<dt>Sign-in providers</dt><dd>1</dd>", overview)
        # trusting a provider's e-mail addresses is the admin's explicit choice (a checkbox, off by default)
        assert "<td>Verified by the provider only</td>" in (await c.get("/admin/campus")).text
        r = await c.post("/admin/sso", data={**full, "slug": "c-uni", "trust_email": "true"}, headers=ORIGIN)
        assert r.status_code == 200 and "<td>Trusted</td>" in r.text and 'id="f-trust_email"' in r.text


async def test_default_language_applies_to_visitors(database: Database) -> None:
    async with client(database) as c:
        token = await _portal_sign_in(c, database.settings.campus.admin_email, ADMIN_PASSWORD)
        original = re.search(r'id="f-name"[^>]*value="([^"]*)"', (await c.get("/admin/campus")).text)
        assert original
        visitor: dict[str, Any] = {}
        try:
            r = await c.post("/admin/campus", data={"name": original.group(1), "default_locale": "fr", "csrf_token": token},
                             headers=ORIGIN, follow_redirects=False)
            assert r.status_code == 303
            # the admin's own pages stay in their profile's language
            assert '<html lang="en">' in (await c.get("/admin")).text
            async with client(database) as anonymous:
                visitor["fr"] = (await anonymous.get("/login")).text
                visitor["en"] = (await anonymous.get("/login", headers={"accept-language": "en"})).text
        finally:
            r = await c.post("/admin/campus", data={"name": original.group(1), "default_locale": "en", "csrf_token": token},
                             headers=ORIGIN, follow_redirects=False)
            assert r.status_code == 303
        assert '<html lang="fr">' in visitor["fr"] and "Se connecter" in visitor["fr"]
        assert '<html lang="en">' in visitor["en"]
        async with client(database) as anonymous:
            assert '<html lang="en">' in (await anonymous.get("/login")).text


async def test_health_page_without_supervisor(database: Database) -> None:
    async with client(database) as c:
        await _portal_sign_in(c, database.settings.campus.admin_email, ADMIN_PASSWORD)
        r = await c.get("/admin/health")
        assert r.status_code == 200 and "<h1>Health</h1>" in r.text
        assert "not running under the supervisor" in r.text and 'href="/admin/health"' in r.text
        rows = dict(re.findall(r'<tr data-component="([^"]+)">.*?<td class="probe">(.*?)</td>', r.text, re.S))
        for name in ("postgres", "nats", "api-0", "relay", "projector-0", "gateway"):
            assert name in rows, name
        assert "up" in rows["postgres"]  # this test's PostgreSQL answers the probe
        assert "down" in rows["gateway"]  # nothing else runs here
        assert "The campus is not healthy." in r.text and "Event backbone" in r.text
        assert "Database from this worker: answers" in re.sub(r"\s+", " ", r.text)
