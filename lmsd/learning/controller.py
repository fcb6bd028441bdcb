"""HTTP for learning activity, progress and xAPI statements."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.learning import service
from lmsd.learning.schemas import ActivityAccepted, ActivityBatch, ProgressOut, StatementPage
from lmsd.policy import Identity
from lmsd.settings import Settings


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
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        ascending: bool = False,
        cursor: str | None = None,
    ) -> Response[StatementPage]:
        """xAPI 1.0.3 statements of learning activity (filters as an LRS's GET /statements:
        ``agent`` is an account name, i.e. a user id)."""
        page = await service.statements(
            db, identity, agent=agent, verb=verb, activity=activity, since=since, until=until,
            limit=limit, ascending=ascending, cursor=cursor, base_url=state.settings.portal_url,
        )
        return Response(page, headers={"X-Experience-API-Version": "1.0.3"})
