"""Portal: the campus admin's pages: users and roles, campus settings, health."""

from __future__ import annotations

from lmsd.portal.pages import PortalPages


class AdminPages(PortalPages):
    path = "/"
