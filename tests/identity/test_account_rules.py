"""The rules of a new account, a sign-in provider and a campus's settings live in the services
(identity.user_problems, sso.provider_problems, campuses.branding_problems): every rule with its
field and code, the first one refused by create_user / create_provider / update_branding, a taken
e-mail or slug refused without spoiling the caller's session (a savepoint), the same limits in the
API's document, and the rules only a service knows refused through the API as problem+json with
field and code."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from lmsd.campuses import service as campuses
from lmsd.db.models import User
from lmsd.errors import Conflict, Invalid
from lmsd.identity import service as identity
from lmsd.identity import sso
from lmsd.ops.openapi import document
from lmsd.settings import Settings
from tests.api import admin, client
from tests.db import Database
from tests.services import PASSWORD, campus_admin, rolled_back

GOOD_USER = {"email": "ada@example.org", "display_name": "Ada", "role": "learner", "password": PASSWORD}
GOOD_PROVIDER = sso.ProviderIn(
    slug="uni", name="University", issuer="https://idp.example.org", client_id="lmsd", client_secret="s3cret"
)


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"email": ""}, "email", "user.email_missing"),
        ({"email": "not-an-email"}, "email", "user.email_invalid"),
        ({"email": "a b@example.org"}, "email", "user.email_invalid"),
        ({"email": "a@" + "b" * identity.EMAIL_MAX}, "email", "user.email_invalid"),
        ({"display_name": ""}, "display_name", "user.display_name_missing"),
        ({"display_name": "x" * (identity.DISPLAY_NAME_MAX + 1)}, "display_name", "user.display_name_too_long"),
        ({"role": "root"}, "role", "user.role_unknown"),
        ({"password": "p" * (identity.PASSWORD_MIN - 1)}, "password", "user.password_too_short"),
        ({"password": "p" * (identity.PASSWORD_MAX + 1)}, "password", "user.password_too_long"),
    ],
)
def test_user_problems_name_field_and_code(change: dict[str, str], field: str, code: str) -> None:
    assert identity.user_problems(**GOOD_USER) == []
    found = identity.user_problems(**{**GOOD_USER, **change})
    assert [(p.field, p.code) for p in found] == [(field, code)]


def test_user_problems_are_all_reported_at_once() -> None:
    found = identity.user_problems("", "", "root", "short")
    assert [p.field for p in found] == ["email", "display_name", "role", "password"]


async def test_create_user_refuses_by_the_rules_and_a_taken_email_leaves_the_session_usable(database: Database) -> None:
    async with rolled_back(database) as db:
        admin_a = await campus_admin(db, database)
        with pytest.raises(Invalid) as refused:
            await identity.create_user(db, admin_a, "not-an-email", "Ada", "learner", PASSWORD)
        assert (refused.value.field, refused.value.code) == ("email", "user.email_invalid")
        email = f"ada-{uuid.uuid4().hex[:8]}@example.org"
        await identity.create_user(db, admin_a, email, "Ada", "learner", PASSWORD)
        with pytest.raises(Conflict) as taken:
            await identity.create_user(db, admin_a, email.upper(), "Ada again", "learner", PASSWORD)
        assert (taken.value.field, taken.value.code) == ("email", "user.email_taken")
        # only the second insert was undone: the session still answers, the first account stands
        names = (await db.scalars(select(User.display_name).where(User.email == email))).all()
        assert names == ["Ada"]


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"slug": ""}, "slug", "sso.slug_missing"),
        ({"slug": "Bad Slug"}, "slug", "sso.slug_invalid"),
        ({"slug": "u" * (sso.SLUG_MAX + 1)}, "slug", "sso.slug_length"),
        ({"name": ""}, "name", "sso.name_missing"),
        ({"name": "n" * (sso.NAME_MAX + 1)}, "name", "sso.name_length"),
        ({"issuer": ""}, "issuer", "sso.issuer_missing"),
        ({"issuer": "https:/"}, "issuer", "sso.issuer_length"),
        ({"issuer": "http://idp.example.org"}, "issuer", "sso.issuer_not_https"),
        ({"client_id": ""}, "client_id", "sso.client_id_missing"),
        ({"client_secret": "s" * (sso.TEXT_MAX + 1)}, "client_secret", "sso.client_secret_length"),
        ({"scopes": "email profile"}, "scopes", "sso.scopes_openid"),
        ({"scopes": "openid " + "x" * sso.TEXT_MAX}, "scopes", "sso.scopes_length"),
        ({"default_role": "root"}, "default_role", "sso.role_unknown"),
    ],
)
def test_provider_problems_name_field_and_code(change: dict[str, Any], field: str, code: str) -> None:
    assert sso.provider_problems(GOOD_PROVIDER) == []
    found = sso.provider_problems(sso.ProviderIn(**{**GOOD_PROVIDER.__dict__, **change}))
    assert [(p.field, p.code) for p in found] == [(field, code)]


def test_provider_on_this_machine_may_use_plain_http() -> None:
    for issuer in ("http://127.0.0.1:8080/realms/x", "http://localhost:9000"):
        assert sso.provider_problems(sso.ProviderIn(**{**GOOD_PROVIDER.__dict__, "issuer": issuer})) == []


async def test_a_taken_slug_is_refused_and_the_session_stays_usable(database: Database) -> None:
    async with rolled_back(database) as db:
        admin_a = await campus_admin(db, database)
        slug = f"uni-{uuid.uuid4().hex[:6]}"
        data = sso.ProviderIn(**{**GOOD_PROVIDER.__dict__, "slug": slug})
        await sso.create_provider(db, admin_a, data)
        with pytest.raises(Conflict) as taken:
            await sso.create_provider(db, admin_a, data)
        assert (taken.value.field, taken.value.code) == ("slug", "sso.slug_taken")
        assert [p.slug for p in await sso.list_providers(db, admin_a)].count(slug) == 1


@pytest.mark.parametrize(
    ("name", "locale", "found"),
    [
        ("  ", "en", [("name", "campus.name_missing")]),
        ("N" * (campuses.NAME_MAX + 1), "en", [("name", "campus.name_too_long")]),
        ("Campus", "de", [("default_locale", "campus.locale_unknown")]),
        ("", "de", [("name", "campus.name_missing"), ("default_locale", "campus.locale_unknown")]),
        (" Campus ", "fr", []),
    ],
)
def test_branding_problems(name: str, locale: str, found: list[tuple[str, str]]) -> None:
    assert [(p.field, p.code) for p in campuses.branding_problems(name, locale)] == found


def test_the_api_document_states_the_services_limits(tmp_path: Any) -> None:
    spec: dict[str, Any] = document(Settings(data_dir=tmp_path))
    schemas = spec["components"]["schemas"]
    user = schemas["UserIn"]["properties"]
    assert (user["password"]["minLength"], user["password"]["maxLength"]) == (identity.PASSWORD_MIN, identity.PASSWORD_MAX)
    assert user["email"]["maxLength"] == identity.EMAIL_MAX  # (its pattern is written for ECMA regexes)
    assert user["display_name"]["maxLength"] == identity.DISPLAY_NAME_MAX
    reset = schemas["ResetConfirm"]["properties"]["new_password"]
    assert (reset["minLength"], reset["maxLength"]) == (identity.PASSWORD_MIN, identity.PASSWORD_MAX)
    provider = schemas["ProviderBody"]["properties"]
    assert (provider["slug"]["maxLength"], provider["slug"]["pattern"]) == (sso.SLUG_MAX, sso.SLUG_PATTERN)
    assert provider["name"]["maxLength"] == sso.NAME_MAX and provider["issuer"]["minLength"] == sso.ISSUER_MIN
    assert {provider[k]["maxLength"] for k in ("issuer", "client_id", "client_secret", "scopes")} == {sso.TEXT_MAX}
    assert schemas["CampusIn"]["properties"]["name"]["maxLength"] == campuses.NAME_MAX


async def test_rules_only_the_services_know_are_problems_with_field_and_code(database: Database) -> None:
    async with client(database) as c:
        root = await admin(c, database)
        email = f"taken-{uuid.uuid4().hex[:8]}@a.example"
        body = {"email": email, "display_name": "Taken", "role": "learner", "password": PASSWORD}
        assert (await c.post("/api/v1/users", headers=root.h, json=body)).status_code == 201
        r = await c.post("/api/v1/users", headers=root.h, json={**body, "email": email.upper()})
        assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
        assert (r.json()["field"], r.json()["code"]) == ("email", "user.email_taken")

        provider = {"slug": f"p-{uuid.uuid4().hex[:6]}", "name": "IdP", "issuer": "https://idp.a.example",
                    "client_id": "lmsd", "client_secret": "s3cret"}
        for change, field, code, status in (
            ({"issuer": "http://idp.a.example"}, "issuer", "sso.issuer_not_https", 422),
            ({"scopes": "email profile"}, "scopes", "sso.scopes_openid", 422),
        ):
            r = await c.post("/api/v1/sso/providers", headers=root.h, json={**provider, **change})
            assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json"), r.text
            assert (r.json()["field"], r.json()["code"]) == (field, code)
        assert (await c.post("/api/v1/sso/providers", headers=root.h, json=provider)).status_code == 201
        r = await c.post("/api/v1/sso/providers", headers=root.h, json=provider)
        assert r.status_code == 409 and (r.json()["field"], r.json()["code"]) == ("slug", "sso.slug_taken")
