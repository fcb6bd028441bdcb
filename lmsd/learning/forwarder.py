"""Forward xAPI statements to an external Learning Record Store (``events.xapi_lrs_url``).

A consumer like the projections: statements are POSTed in batches to ``<url>/statements`` with
``X-Experience-API-Version: 1.0.3`` (and HTTP Basic auth from ``events.xapi_lrs_credentials_file``).
Statement ids are the event ids, so a batch sent twice (redelivery) is the same statements: an
LRS accepts a statement again with the same id and content. While the LRS is down or answers 5xx,
the batch is retried (never dead-lettered); a statement it refuses (4xx) is dead-lettered with
the LRS's answer after the usual attempts.
"""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import httpx

import lmsd
from lmsd.errors import Invalid
from lmsd.events.consumers import ApplyFailed, Delivered, Unavailable
from lmsd.events.envelope import NewEvent
from lmsd.learning import xapi
from lmsd.settings import Settings


def read_credentials(path: str) -> tuple[str, str] | None:
    if not path:
        return None
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text().strip()
    except OSError as exc:
        raise Invalid(f"cannot read the LRS credentials file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Invalid(f"the LRS credentials file {path} must be readable by its owner only (chmod 600)")
    key, sep, secret = text.partition(":")
    if not sep or not key:
        raise Invalid(f"the LRS credentials file {path} must hold key:secret")
    return key, secret


def forwarder_for(settings: Settings) -> XapiForwarder | None:
    """The forwarder the campus is configured for (events.xapi_lrs_url), or None."""
    events = settings.events
    if not events.xapi_lrs_url:
        return None
    return XapiForwarder(settings.portal_url, events.xapi_lrs_url, events.xapi_lrs_credentials_file)


class XapiForwarder:
    name: str = "xapi-forward"
    tables: tuple[str, ...] = ()

    def __init__(self, base_url: str, lrs_url: str, credentials_file: str = "", timeout_s: float = 10.0) -> None:
        self.base_url = base_url
        self.endpoint = lrs_url.rstrip("/") + "/statements"
        auth = read_credentials(credentials_file)
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            auth=httpx.BasicAuth(*auth) if auth else None,
            headers={"X-Experience-API-Version": "1.0.3", "User-Agent": f"lmsd/{lmsd.__version__}"},
        )

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        if not live:
            return []  # replaying never re-sends to the outside
        statements = [xapi.statement(d.event, self.base_url) for d in events]
        try:
            response = await self.client.post(self.endpoint, json=statements)
        except httpx.HTTPError as exc:
            raise Unavailable(f"LRS {self.endpoint}: {exc}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise Unavailable(f"LRS {self.endpoint} answered {response.status_code}")
        if response.status_code >= 400:
            raise ApplyFailed(f"LRS refused the statements: {response.status_code} {response.text[:300]}")
        return []

    async def close(self) -> None:
        await self.client.aclose()
