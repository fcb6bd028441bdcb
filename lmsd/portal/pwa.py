"""Portal: the installable web app: manifest, service worker, offline page, offline progress."""

from __future__ import annotations

from lmsd.portal.pages import PortalPages


class PwaPages(PortalPages):
    path = "/"
