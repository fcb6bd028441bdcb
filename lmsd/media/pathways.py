"""Health of the delivery pathways, probed in the background by each API worker; the steering
endpoint sends a failing pathway to the end of PATHWAY-PRIORITY."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from lmsd.settings import MediaSettings

log = logging.getLogger("lmsd.media.pathways")
PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 3.0


class PathwayHealth:
    def __init__(self, media: MediaSettings) -> None:
        self.targets = {p.id: p.health_url for p in media.pathways if p.health_url}
        self.failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def unhealthy(self) -> set[str]:
        return set(self.failing)

    async def probe_once(self, client: httpx.AsyncClient) -> None:
        for pathway, url in self.targets.items():
            try:
                response = await client.get(url, timeout=PROBE_TIMEOUT_S)
                ok = response.status_code < 400
            except httpx.HTTPError:
                ok = False
            if ok and pathway in self.failing:
                log.info("pathway %s is healthy again", pathway)
                self.failing.discard(pathway)
            elif not ok and pathway not in self.failing:
                log.warning("pathway %s failed its health probe (%s)", pathway, url)
                self.failing.add(pathway)

    async def _loop(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            while True:
                await self.probe_once(client)
                await asyncio.sleep(PROBE_EVERY_S)

    def start(self) -> None:
        if self.targets and self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
