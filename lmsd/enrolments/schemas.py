from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec


class EnrolIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: uuid.UUID
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class EnrolmentPatch(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["active", "completed", "withdrawn"]


class EnrolmentOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    enrolled_by: uuid.UUID | None
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime


class EnrolmentPage(msgspec.Struct):
    items: list[EnrolmentOut]
    next_cursor: str | None
