"""campuses.branding_of: what every portal page shows of its campus (public), and no other campus."""

from __future__ import annotations

import uuid

import pytest

from lmsd.campuses import service as campuses
from lmsd.errors import NotFound
from tests.db import Database
from tests.services import campus_admin, campus_b, rolled_back

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


async def test_branding_of_a_campus_and_its_logo(database: Database) -> None:
    async with rolled_back(database) as db:
        admin = await campus_admin(db, database)
        b = await campus_b(db)
        await campuses.update_branding(db, admin, "Campus A renamed", "fr")
        found = await campuses.branding_of(db, admin.campus_id)
        assert (found.id, found.name, found.default_locale, found.has_logo, found.logo_hash) == (
            admin.campus_id, "Campus A renamed", "fr", False, ""
        )
        await campuses.set_logo(db, admin, PNG)
        found = await campuses.branding_of(db, admin.campus_id)
        assert found.has_logo and len(found.logo_hash) == 32
        other = await campuses.branding_of(db, b.admin.campus_id)  # campus B's own facts, not A's
        assert (other.name, other.has_logo) == ("Campus B", False)


async def test_unknown_campus_is_not_found(database: Database) -> None:
    async with rolled_back(database) as db:
        with pytest.raises(NotFound):
            await campuses.branding_of(db, uuid.uuid4())
