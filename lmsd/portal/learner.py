"""Portal: the learner's pages: catalog, course, enrolment, lessons (text, video, quiz), my courses, profile."""

from __future__ import annotations

from lmsd.portal.pages import PortalPages


class LearnerPages(PortalPages):
    path = "/"
