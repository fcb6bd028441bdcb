"""Wire shapes of the courses API (msgspec: validated, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

# The limits, named so that forms (the portal's) check the same numbers the API refuses.
MAX_TITLE = 300
MAX_CODE = 64
MAX_SUMMARY = 5000
MAX_TAGS = 20
MAX_TAG = 64
MAX_BODY = 200_000

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CODE, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Lang = Annotated[str, msgspec.Meta(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TAG)]
Status = Literal["draft", "published", "archived"]
LessonKind = Literal["text", "video", "quiz"]
Body = Annotated[str, msgspec.Meta(max_length=MAX_BODY)]
Summary = Annotated[str, msgspec.Meta(max_length=MAX_SUMMARY)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS)]


class CourseIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    title: Title
    summary: Summary = ""
    language: Lang = "en"
    tags: Tags = []
    self_enrol: bool = False


class CoursePatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    summary: Summary | msgspec.UnsetType = msgspec.UNSET
    language: Lang | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    self_enrol: bool | msgspec.UnsetType = msgspec.UNSET


class CourseOut(msgspec.Struct):
    id: uuid.UUID
    code: str
    title: str
    summary: str
    language: str
    tags: list[str]
    status: str
    self_enrol: bool
    version: int
    created_at: datetime
    updated_at: datetime


class LessonSummary(msgspec.Struct):
    id: uuid.UUID
    title: str
    kind: str
    position: int


class ModuleOut(msgspec.Struct):
    id: uuid.UUID
    title: str
    position: int
    version: int
    lessons: list[LessonSummary] = []


class InstructorOut(msgspec.Struct):
    id: uuid.UUID
    display_name: str


class OutlineOut(msgspec.Struct):
    course: CourseOut
    instructors: list[InstructorOut]
    modules: list[ModuleOut]


class CoursePage(msgspec.Struct):
    items: list[CourseOut]
    next_cursor: str | None


class ModuleIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None


class ModulePatch(msgspec.Struct, forbid_unknown_fields=True):
    title: Title


class LessonIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    kind: LessonKind = "text"
    body: Body = ""
    video_id: uuid.UUID | None = None
    quiz_id: uuid.UUID | None = None
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None


class LessonPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    body: Body | msgspec.UnsetType = msgspec.UNSET
    video_id: uuid.UUID | None | msgspec.UnsetType = msgspec.UNSET
    quiz_id: uuid.UUID | None | msgspec.UnsetType = msgspec.UNSET


class LessonOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    module_id: uuid.UUID
    title: str
    kind: str
    body: str
    video_id: uuid.UUID | None
    quiz_id: uuid.UUID | None
    position: int
    version: int


class Reorder(msgspec.Struct, forbid_unknown_fields=True):
    ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=1000)]


class InstructorIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: uuid.UUID
