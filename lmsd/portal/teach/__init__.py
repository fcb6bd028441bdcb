"""Portal: the instructor's pages: courses, modules and lessons, lecture uploads, transcripts, enrolments, gradebook.

Everything is under ``/teach`` and open to instructors and campus admins (learners get the 403
page); per-course rights are the services' (:mod:`lmsd.policy`): a course the instructor does
not teach answers 403, another campus's ids 404. Every change is a form posting to its own URL
with the page's CSRF token, then a redirect (303) back to the page with a notice; invalid input
re-renders the page with status 422, the values typed and a message per field
(:mod:`lmsd.portal.forms`). Edits carry the version that was read, so a concurrent edit is
refused with a message (409) instead of lost. The pages call services only, and never roll
back: the request's unit of work does not commit a 4xx answer.

- :mod:`.common`: who may teach, labels and notices, language choices;
- :mod:`.courses`: my courses, a new course, a course's settings and publication (and the page
  that also shows its outline);
- :mod:`.outline`: modules and lessons, *Move up* / *Move down*, a lesson's editor;
- :mod:`.videos`: the course's videos, the lecture upload, a video as a lesson, transcripts;
- :mod:`.enrolments`: who is enrolled, enrolling by e-mail, withdrawing;
- :mod:`.gradebook`: learners × quizzes, and as CSV.
"""

from __future__ import annotations

from litestar import Router

from lmsd.portal.teach.courses import CoursePages
from lmsd.portal.teach.enrolments import EnrolmentPages
from lmsd.portal.teach.gradebook import GradebookPages
from lmsd.portal.teach.outline import OutlinePages
from lmsd.portal.teach.videos import VideoPages

TeachPages = Router(
    path="/",
    route_handlers=[CoursePages, OutlinePages, VideoPages, EnrolmentPages, GradebookPages],
    include_in_schema=False,
)

__all__ = ["CoursePages", "EnrolmentPages", "GradebookPages", "OutlinePages", "TeachPages", "VideoPages"]
