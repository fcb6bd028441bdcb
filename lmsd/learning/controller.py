"""HTTP for learning activity, progress and xAPI statements."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination
from lmsd.errors import Invalid
from lmsd.learning import service
from lmsd.learning.schemas import ActivityAccepted, ActivityBatch, ProgressOut, StatementPage
from lmsd.policy import Identity
from lmsd.settings import Settings

# RFC 3339 date-time, the OpenAPI `date-time` format: a time zone is part of it. (Litestar's own
# datetime conversion would also take a bare number as a Unix time: "until=0.5".)
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
Instant = Annotated[str | None, Parameter(max_length=64, schema_extra={"format": "date-time"})]


def instant(name: str, value: str | None) -> datetime | None:
    """A date-time query parameter as an aware datetime; one that is not RFC 3339 is refused."""
    if value is None:
        return None
    try:
        if not RFC3339.fullmatch(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise Invalid(f"{name} must be an RFC 3339 date-time (e.g. 2026-11-25T10:00:00Z)", field=name) from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 moved past the range of datetime by its offset
        return datetime.min.replace(tzinfo=UTC) if parsed.year == 1 else datetime.max.replace(tzinfo=UTC)


class LearningController(Controller):
    path = "/api/v1"
    tags = ["learning"]

    @post("/learning/events", status_code=202)
    async def record(
        self, db: AsyncSession, identity: Identity, data: ActivityBatch, request: Request[object, object, State]
    ) -> Response[ActivityAccepted]:
        """Record a batch of your own learning events (lesson started/completed, video watched).

        Accepted events are in the record when this returns (committed with the outbox); progress
        follows within a second. ``expected_versions`` makes the write conditional per enrolment
        (409 when another writer came first: reload progress and retry)."""
        settings: Settings = request.app.state.settings
        accepted = await service.record_activity(db, identity, data, settings.events.max_batch)
        return Response(accepted, status_code=202)

    @get("/enrolments/{enrolment_id:uuid}/progress")
    async def progress(self, db: AsyncSession, identity: Identity, enrolment_id: uuid.UUID) -> ProgressOut:
        """Progress of one enrolment (the learner, the course's instructors, campus admins)."""
        return await service.progress(db, identity, enrolment_id)

    @get("/xapi/statements")
    async def statements(
        self,
        db: AsyncSession,
        identity: Identity,
        state: State,
        agent: uuid.UUID | None = None,
        verb: str | None = None,
        activity: str | None = None,
        since: Instant = None,
        until: Instant = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        ascending: bool = False,
        cursor: pagination.TimeCursor = None,
    ) -> Response[StatementPage]:
        """xAPI 1.0.3 statements of learning activity (filters as an LRS's GET /statements:
        ``agent`` is an account name, i.e. a user id)."""
        page = await service.statements(
            db, identity, agent=agent, verb=verb, activity=activity,
            since=instant("since", since), until=instant("until", until),
            limit=limit, ascending=ascending, cursor=cursor, base_url=state.settings.portal_url,
        )
        return Response(page, headers={"X-Experience-API-Version": "1.0.3"})
