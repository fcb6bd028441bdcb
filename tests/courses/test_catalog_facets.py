"""courses.catalog_facets: the catalog's language and topic choices, from the campus's published
courses only."""

from __future__ import annotations

from lmsd.courses import service as courses
from tests.db import Database
from tests.services import campus_admin, campus_b, member, published_course, rolled_back


async def test_facets_of_published_courses_of_the_campus(database: Database) -> None:
    async with rolled_back(database) as db:
        admin = await campus_admin(db, database)
        teacher = await member(db, admin, "instructor")
        learner = await member(db, admin)
        b = await campus_b(db)
        await published_course(db, teacher, language="fr", tags=("zz-algebra", "zz-maths"))
        await published_course(db, teacher, language="de", tags=("zz-maths",))
        await published_course(db, teacher, language="pt", tags=("zz-draft-only",), publish=False)
        await published_course(db, b.admin, language="ja", tags=("zz-other-campus",))
        languages, tags = await courses.catalog_facets(db, learner)
        mine = [t for t in tags if t.startswith("zz-")]
        assert mine == ["zz-algebra", "zz-maths"]  # sorted, once each; no draft's, no campus B's
        assert {"fr", "de"} <= set(languages) and "pt" not in languages and "ja" not in languages
        assert languages == sorted(languages)
        b_languages, b_tags = await courses.catalog_facets(db, b.learner)
        assert (b_languages, b_tags) == (["ja"], ["zz-other-campus"])


async def test_facets_keep_at_most_max_tags(database: Database) -> None:
    async with rolled_back(database) as db:
        b = await campus_b(db)
        await published_course(db, b.admin, tags=("c", "a", "b"))
        assert (await courses.catalog_facets(db, b.learner, max_tags=2))[1] == ["a", "b"]
        assert (await courses.catalog_facets(db, b.learner, max_tags=0))[1] == []
