"""The identity service's profile functions the portal uses: update_profile, profile_problems,
set_locale, locale_of, and the sign-in page's enabled_providers."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from lmsd.errors import Invalid, NotFound
from lmsd.identity import service as identity
from lmsd.identity import sso
from tests.db import Database
from tests.services import campus_admin, campus_b, member, rolled_back


async def test_update_profile_saves_name_and_language(database: Database) -> None:
    async with rolled_back(database) as db:
        me = await member(db, await campus_admin(db, database))
        user = await identity.update_profile(db, me, "  Ana \t María ", "es")
        assert (user.display_name, user.locale) == ("Ana María", "es")
        assert await identity.locale_of(db, me) == "es"
        assert (await identity.get_user(db, me, me.user_id)).display_name == "Ana María"


@pytest.mark.parametrize(
    ("name", "locale", "field", "code"),
    [
        ("   ", "en", "display_name", "user.display_name_missing"),
        ("x" * 201, "en", "display_name", "user.display_name_too_long"),
        ("Ana", "xx", "language", "user.locale_unknown"),
        ("Ana", "", "language", "user.locale_unknown"),
    ],
)
async def test_update_profile_refuses_bad_input(database: Database, name: str, locale: str, field: str, code: str) -> None:
    async with rolled_back(database) as db:
        me = await member(db, await campus_admin(db, database))
        with pytest.raises(Invalid) as caught:
            await identity.update_profile(db, me, name, locale)
        assert (caught.value.field, caught.value.code) == (field, code)
        assert (await identity.get_user(db, me, me.user_id)).locale == "en"  # nothing saved


def test_profile_problems_lists_every_field_at_once() -> None:
    problems = identity.profile_problems("", "xx")
    assert [(p.field, p.code) for p in problems] == [
        ("display_name", "user.display_name_missing"), ("language", "user.locale_unknown")
    ]
    assert identity.profile_problems("x" * 200, "fr") == []


async def test_set_locale_and_its_bad_input(database: Database) -> None:
    async with rolled_back(database) as db:
        me = await member(db, await campus_admin(db, database))
        await identity.set_locale(db, me, "fr")
        assert await identity.locale_of(db, me) == "fr"
        with pytest.raises(Invalid) as caught:
            await identity.set_locale(db, me, "de")
        assert (caught.value.field, caught.value.code) == ("language", "user.locale_unknown")
        assert await identity.locale_of(db, me) == "fr"


async def test_another_campus_account_is_not_found(database: Database) -> None:
    async with rolled_back(database) as db:
        me = await member(db, await campus_admin(db, database))
        b = await campus_b(db)
        # the same account id under campus B: not found there, and nothing of campus A changes
        forged = dataclasses.replace(b.learner, user_id=me.user_id)
        with pytest.raises(NotFound):
            await identity.update_profile(db, forged, "Mallory", "fr")
        with pytest.raises(NotFound):
            await identity.set_locale(db, forged, "fr")
        assert await identity.locale_of(db, forged) is None
        assert await identity.locale_of(db, dataclasses.replace(me, user_id=uuid.uuid4())) is None
        assert (await identity.get_user(db, me, me.user_id)).locale == "en"


async def test_enabled_providers_of_one_campus_by_name(database: Database) -> None:
    async with rolled_back(database) as db:
        admin = await campus_admin(db, database)
        b = await campus_b(db)

        def provider(slug: str, name: str) -> sso.ProviderIn:
            return sso.ProviderIn(slug=slug, name=name, issuer="https://idp.example.org", client_id="c",
                                  client_secret="s")

        zed = await sso.create_provider(db, admin, provider("zed", "Zed University"))
        await sso.create_provider(db, admin, provider("alpha", "Alpha Institute"))
        off = await sso.create_provider(db, admin, provider("off", "Off College"))
        await sso.set_provider_enabled(db, admin, off.id, False)
        await sso.create_provider(db, b.admin, provider("bee", "Bee School"))
        found = await sso.enabled_providers(db, admin.campus_id)
        names = [p.name for p in found if p.slug in ("zed", "alpha", "off", "bee")]
        assert names == ["Alpha Institute", "Zed University"] and zed.id in {p.id for p in found}
        assert [p.name for p in await sso.enabled_providers(db, b.admin.campus_id)] == ["Bee School"]
        assert await sso.enabled_providers(db, uuid.uuid4()) == []
