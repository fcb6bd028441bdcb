"""Moving one module, or one lesson within its module, one place up or down (the portal's
*Move up* / *Move down*; the API sets a whole order with :func:`lmsd.courses.service.reorder`)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd import policy
from lmsd.courses.service import load_course
from lmsd.db.models import Lesson, Module
from lmsd.errors import Invalid, NotFound
from lmsd.policy import Identity

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")


async def move_module(session: AsyncSession, actor: Identity, module_id: uuid.UUID, direction: str) -> Module:
    """Swap a module with its neighbour above or below; the first one up (the last one down)
    stays where it is. Returns the module (its course is where the caller goes back to)."""
    module = await session.get(Module, (actor.campus_id, module_id))
    if module is None:
        raise NotFound("no such module")
    where = [Module.campus_id == actor.campus_id, Module.course_id == module.course_id]
    await _move(session, actor, module.course_id, Module, where, module_id, direction)
    return module


async def move_lesson(session: AsyncSession, actor: Identity, lesson_id: uuid.UUID, direction: str) -> Lesson:
    """Swap a lesson with its neighbour above or below in its module (see :func:`move_module`)."""
    lesson = await session.get(Lesson, (actor.campus_id, lesson_id))
    if lesson is None:
        raise NotFound("no such lesson")
    where = [Lesson.campus_id == actor.campus_id, Lesson.module_id == lesson.module_id]
    await _move(session, actor, lesson.course_id, Lesson, where, lesson_id, direction)
    return lesson


async def _move(
    session: AsyncSession, actor: Identity, course_id: uuid.UUID, model: Any, where: list[Any], item: uuid.UUID,
    direction: str,
) -> None:
    _, rel = await load_course(session, actor, course_id, for_update=True)
    policy.require(actor, "course.update", rel)
    if direction not in DIRECTIONS:
        raise Invalid("direction must be up or down", field="direction", code="outline.direction_unknown")
    ids = list((await session.scalars(select(model.id).where(*where).order_by(model.position, model.id))).all())
    index = ids.index(item)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(ids):
        return
    ids[index], ids[other] = ids[other], ids[index]
    for position, found in enumerate(ids):
        await session.execute(update(model).where(*where, model.id == found).values(position=position))
    await session.flush()
