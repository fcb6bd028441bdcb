from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.campuses import service
from lmsd.identity.schemas import Email, NewPassword
from lmsd.policy import Identity


class CampusIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=service.NAME_MAX)]
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]
    admin_email: Email
    admin_password: NewPassword


class CampusOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    host: str


class CampusController(Controller):
    path = "/api/v1/campuses"
    tags = ["campuses"]

    @get("/")
    async def list_campuses(self, db: AsyncSession, identity: Identity) -> list[CampusOut]:
        return [CampusOut(c.id, c.name, c.host) for c in await service.list_campuses(db, identity)]

    @post("/")
    async def create(self, db: AsyncSession, identity: Identity, data: CampusIn) -> Response[CampusOut]:
        """Create a campus on this deployment with its first administrator (platform admins)."""
        c = await service.create_campus(db, identity, data.name, data.host, data.admin_email, data.admin_password)
        return Response(CampusOut(c.id, c.name, c.host), status_code=201)
