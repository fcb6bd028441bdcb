"""A course's gradebook: learners × quizzes (best score, attempts), as a page and as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from litestar import Request, Response, get
from litestar.datastructures import State

from lmsd.courses import service as courses
from lmsd.portal.i18n import gettext as _
from lmsd.portal.pages import PortalPages
from lmsd.portal.teach.common import fill, teacher
from lmsd.quizzes import service as quizzes
from lmsd.server.session import DbSession

Learner = TypeVar("Learner")
Cells = dict[uuid.UUID, tuple[float | None, int]]  # quiz → (best score, attempts)


def with_totals(rows: Sequence[tuple[Learner, Cells]]) -> list[tuple[Learner, Cells, float]]:
    """Each learner's row with the sum of their best scores."""
    return [(learner, cells, sum(best or 0.0 for best, _n in cells.values())) for learner, cells in rows]


def plain(value: float | None) -> str:
    """A score as a spreadsheet reads it: no thousands separator, no trailing zeros."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class GradebookPages(PortalPages):
    path = "/"

    @get("/teach/courses/{course_id:uuid}/gradebook")
    async def gradebook(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        course = await courses.managed_course(db, who, course_id)
        course_quizzes, maxima, rows = await quizzes.gradebook(db, who, course_id)
        return page.render(
            "teach/gradebook.html", title=fill(_("Gradebook: %(course)s"), course=course.title), course=course,
            quizzes=course_quizzes, maxima=maxima, rows=with_totals(rows), section="gradebook",
        )

    @get("/teach/courses/{course_id:uuid}/gradebook.csv")
    async def gradebook_csv(self, request: Request[Any, Any, State], db: DbSession, course_id: uuid.UUID) -> Response[Any]:
        page, who = await teacher(request, db)
        course = await courses.managed_course(db, who, course_id)
        course_quizzes, maxima, rows = await quizzes.gradebook(db, who, course_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["learner", "email", *(f"{q.title} (/{plain(maxima.get(q.id, 0.0))})" for q in course_quizzes), "total"])
        for user, cells, total in with_totals(rows):
            writer.writerow([
                cell(user.display_name), cell(user.email),
                *(plain(cells[q.id][0]) for q in course_quizzes), plain(total),
            ])
        return Response(
            out.getvalue(), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{course.code}-gradebook.csv"',
                     "Cache-Control": "private, no-store"},
        )
