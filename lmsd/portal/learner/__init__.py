"""Portal: the learner's pages: catalog, course, enrolment, lessons (text, video, quiz), my courses, profile.

Every page calls the same services as the JSON API with the signed-in identity, so what a
learner may see is decided by :mod:`lmsd.policy` (another campus's ids are 404, a course the
learner is not enrolled in shows its outline but not its lessons: 403).

- :mod:`.common`: a course's outline, the learner's standing in it (enrolment and progress), names;
- :mod:`.courses`: the catalog, a course page, enrolment, my courses;
- :mod:`.lessons`: a lesson of any kind, "Mark as complete", a quiz attempt;
- :mod:`.profile`: display name and language.
"""

from __future__ import annotations

from litestar import Router

from lmsd.portal.learner.courses import CoursePages
from lmsd.portal.learner.lessons import LessonPages
from lmsd.portal.learner.profile import ProfilePages

LearnerPages = Router(path="/", route_handlers=[CoursePages, LessonPages, ProfilePages], include_in_schema=False)

__all__ = ["CoursePages", "LearnerPages", "LessonPages", "ProfilePages"]
