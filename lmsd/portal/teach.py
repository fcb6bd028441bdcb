"""Portal: the instructor's pages: courses, modules and lessons, lecture uploads, transcripts, enrolments, gradebook."""

from __future__ import annotations

from lmsd.portal.pages import PortalPages


class TeachPages(PortalPages):
    path = "/"
