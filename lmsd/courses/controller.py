"""HTTP for courses, modules and lessons: translate, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import pagination
from lmsd.courses import archive, service
from lmsd.courses.schemas import (
    CourseIn,
    CourseOut,
    CoursePage,
    CoursePatch,
    InstructorIn,
    InstructorOut,
    LessonIn,
    LessonOut,
    LessonPatch,
    LessonSummary,
    ModuleIn,
    ModuleOut,
    ModulePatch,
    OutlineOut,
    Reorder,
    Status,
)
from lmsd.db.models import Course, Lesson, Module
from lmsd.policy import Identity

# Required by every conditional update: without it the service answers 428 (lmsd.server.openapi
# marks it required in the document). `*` is any version; the weak ETag of a response names one.
IfMatch = Annotated[
    str | None,
    Parameter(header="If-Match", required=False, pattern=r'^(\*|(W/)?"[0-9]{1,18}")$',
              description='the ETag you read (W/"<version>"), or * for any version'),
]


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'W/"{version}"'}


def course_out(course: Course) -> CourseOut:
    return CourseOut(
        id=course.id,
        code=course.code,
        title=course.title,
        summary=course.summary,
        language=course.language,
        tags=list(course.tags),
        status=course.status,
        self_enrol=course.self_enrol,
        version=course.version,
        created_at=course.created_at,
        updated_at=course.updated_at,
    )


def module_out(module: Module, lessons: list[Lesson] | None = None) -> ModuleOut:
    return ModuleOut(
        id=module.id,
        title=module.title,
        position=module.position,
        version=module.version,
        lessons=[LessonSummary(ls.id, ls.title, ls.kind, ls.position) for ls in lessons or []],
    )


def lesson_out(lesson: Lesson) -> LessonOut:
    return LessonOut(
        id=lesson.id,
        course_id=lesson.course_id,
        module_id=lesson.module_id,
        title=lesson.title,
        kind=lesson.kind,
        body=lesson.body,
        video_id=lesson.video_id,
        quiz_id=lesson.quiz_id,
        position=lesson.position,
        version=lesson.version,
    )


class CourseController(Controller):
    path = "/api/v1/courses"
    tags = ["courses"]

    @get("/")
    async def catalog(
        self,
        db: AsyncSession,
        identity: Identity,
        cursor: pagination.Cursor = None,
        limit: pagination.Limit = None,
        q: Annotated[str | None, Parameter(max_length=100)] = None,
        language: Annotated[str | None, Parameter(max_length=16)] = None,
        tag: Annotated[str | None, Parameter(max_length=64)] = None,
        status: Status | None = None,
    ) -> CoursePage:
        """The campus catalog (published courses; staff may ask for draft or archived ones)."""
        page = await service.catalog(
            db, identity, cursor=cursor, limit=limit, q=q, language=language, tag=tag, status=status
        )
        return CoursePage([course_out(c) for c in page.items], page.next_cursor)

    @post("/")
    async def create(self, db: AsyncSession, identity: Identity, data: CourseIn) -> Response[CourseOut]:
        """Create a draft course; the creator becomes its instructor."""
        course = await service.create_course(db, identity, data)
        return Response(course_out(course), status_code=201, headers=etag(course.version))

    @get("/{course_id:uuid}")
    async def get_outline(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID) -> Response[OutlineOut]:
        """The course with its instructors, modules and lesson titles in order."""
        course, instructors, modules, lessons = await service.outline(db, identity, course_id)
        body = OutlineOut(
            course=course_out(course),
            instructors=[InstructorOut(u.id, u.display_name) for u in instructors],
            modules=[module_out(m, lessons.get(m.id)) for m in modules],
        )
        return Response(body, headers=etag(course.version))

    @patch("/{course_id:uuid}")
    async def update(
        self, db: AsyncSession, identity: Identity, course_id: uuid.UUID, data: CoursePatch, if_match: IfMatch
    ) -> Response[CourseOut]:
        """Change a course (If-Match required): title, summary, language, tags, status, self-enrol."""
        course = await service.update_course(db, identity, course_id, data, if_match)
        return Response(course_out(course), headers=etag(course.version))

    @post("/{course_id:uuid}/instructors", status_code=204)
    async def add_instructor(
        self, db: AsyncSession, identity: Identity, course_id: uuid.UUID, data: InstructorIn
    ) -> None:
        """Add a co-instructor (an instructor or admin of the same campus)."""
        await service.add_instructor(db, identity, course_id, data.user_id)

    @post("/{course_id:uuid}/modules")
    async def create_module(
        self, db: AsyncSession, identity: Identity, course_id: uuid.UUID, data: ModuleIn
    ) -> Response[ModuleOut]:
        """Add a module (at the end, or at `position`)."""
        module = await service.create_module(db, identity, course_id, data)
        return Response(module_out(module), status_code=201, headers=etag(module.version))

    @get("/{course_id:uuid}/export")
    async def export(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID) -> Response[archive.Archive]:
        """The course as a self-contained archive (docs/course-archive.md), for another campus or deployment."""
        body = await archive.export_course(db, identity, course_id)
        filename = f"{body.course.code}.lmsd-course.json"
        return Response(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @post("/import")
    async def import_(
        self,
        db: AsyncSession,
        identity: Identity,
        data: archive.Archive,
        code: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> Response[CourseOut]:
        """Create a draft course from an archive; `code` renames it when the code is taken."""
        course = await archive.import_course(db, identity, data, code)
        return Response(course_out(course), status_code=201, headers=etag(course.version))

    @put("/{course_id:uuid}/modules/order", status_code=204)
    async def order_modules(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID, data: Reorder) -> None:
        """Reorder the course's modules: `ids` lists every module once, in the new order."""
        await service.reorder(db, identity, course_id, data.ids, module_id=None)


class ModuleController(Controller):
    path = "/api/v1/modules"
    tags = ["courses"]

    @patch("/{module_id:uuid}")
    async def rename(
        self, db: AsyncSession, identity: Identity, module_id: uuid.UUID, data: ModulePatch, if_match: IfMatch
    ) -> Response[ModuleOut]:
        module = await service.rename_module(db, identity, module_id, data.title, if_match)
        return Response(module_out(module), headers=etag(module.version))

    @delete("/{module_id:uuid}", status_code=204)
    async def remove(self, db: AsyncSession, identity: Identity, module_id: uuid.UUID) -> None:
        await service.delete_module(db, identity, module_id)

    @post("/{module_id:uuid}/lessons")
    async def create_lesson(
        self, db: AsyncSession, identity: Identity, module_id: uuid.UUID, data: LessonIn
    ) -> Response[LessonOut]:
        lesson = await service.create_lesson(db, identity, module_id, data)
        return Response(lesson_out(lesson), status_code=201, headers=etag(lesson.version))

    @put("/{module_id:uuid}/lessons/order", status_code=204)
    async def order_lessons(self, db: AsyncSession, identity: Identity, module_id: uuid.UUID, data: Reorder) -> None:
        module, _ = await service.load_module(db, identity, module_id)
        await service.reorder(db, identity, module.course_id, data.ids, module_id=module_id)


class LessonController(Controller):
    path = "/api/v1/lessons"
    tags = ["courses"]

    @get("/{lesson_id:uuid}")
    async def get_lesson(self, db: AsyncSession, identity: Identity, lesson_id: uuid.UUID) -> Response[LessonOut]:
        """A lesson's content: for enrolled learners, the course's instructors and admins."""
        lesson = await service.get_lesson(db, identity, lesson_id)
        return Response(lesson_out(lesson), headers=etag(lesson.version))

    @patch("/{lesson_id:uuid}")
    async def update_lesson(
        self, db: AsyncSession, identity: Identity, lesson_id: uuid.UUID, data: LessonPatch, if_match: IfMatch
    ) -> Response[LessonOut]:
        lesson = await service.update_lesson(db, identity, lesson_id, data, if_match)
        return Response(lesson_out(lesson), headers=etag(lesson.version))


class MyCoursesOut(msgspec.Struct):
    enrolled: list[CourseOut]
    teaching: list[CourseOut]


class MyCoursesController(Controller):
    path = "/api/v1/me/courses"
    tags = ["courses"]

    @get("/")
    async def my_courses(self, db: AsyncSession, identity: Identity) -> MyCoursesOut:
        """Courses you are enrolled in and courses you teach."""
        enrolled, teaching = await service.my_courses(db, identity)
        return MyCoursesOut([course_out(c) for c in enrolled], [course_out(c) for c in teaching])
