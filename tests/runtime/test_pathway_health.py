"""Pathway health: a CDN whose health URL stops answering is marked failing, and healthy again
when it answers (probed against a real HTTP server on loopback)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from lmsd.media.pathways import PathwayHealth
from lmsd.media.playlists import pathway_priority, region_of
from lmsd.settings import MediaSettings, Pathway


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_a_failing_pathway_is_marked_and_recovers() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    media = MediaSettings(pathways=[
        Pathway(id="cdn-a", base_url="https://a.example/media/", health_url=url),
        Pathway(id="cdn-b", base_url="https://b.example/media/", health_url="http://127.0.0.1:9/down"),
        Pathway(id="cdn-c", base_url="https://c.example/media/"),  # no probe: never marked
    ])
    health = PathwayHealth(media)
    assert set(health.targets) == {"cdn-a", "cdn-b"}
    async with httpx.AsyncClient() as client:
        await health.probe_once(client)
        assert health.unhealthy() == {"cdn-b"}  # nothing listens on port 9
        _Health.status = 503
        await health.probe_once(client)
        assert health.unhealthy() == {"cdn-a", "cdn-b"}
        _Health.status = 200
        await health.probe_once(client)
        assert health.unhealthy() == {"cdn-b"}
        server.shutdown()
        server.server_close()
        await health.probe_once(client)
        assert health.unhealthy() == {"cdn-a", "cdn-b"}


def test_priority_by_region_then_health() -> None:
    pathways = [("origin", ["campus"]), ("cdn-eu", ["eu"]), ("cdn-us", ["us", "ca"])]
    assert pathway_priority(pathways, "us", set()) == ["cdn-us", "origin", "cdn-eu"]
    assert pathway_priority(pathways, None, set()) == ["origin", "cdn-eu", "cdn-us"]
    assert pathway_priority(pathways, "us", {"cdn-us"}) == ["origin", "cdn-eu", "cdn-us"]
    assert pathway_priority(pathways, "eu", {"origin", "cdn-eu"}) == ["cdn-us", "cdn-eu", "origin"]
    networks = {"eu": ["10.0.0.0/8"], "eu-paris": ["10.1.0.0/16"], "us": ["2001:db8::/32"]}
    assert region_of("10.1.2.3", networks) == "eu-paris"  # the most specific network wins
    assert region_of("10.9.2.3", networks) == "eu"
    assert region_of("2001:db8::5", networks) == "us"
    assert region_of("192.0.2.1", networks) is None
    assert region_of("not an address", networks) is None


def test_bad_media_settings_are_refused() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a network"):
        MediaSettings(region_networks={"eu": ["10.0.0.0/33"]})
    with pytest.raises(ValidationError, match="unique"):
        MediaSettings(pathways=[Pathway(id="origin", base_url="https://a.example/media/")])
    with pytest.raises(ValidationError):
        Pathway(id="cdn", base_url="ftp://a.example/media")  # https?://…/ only
    with pytest.raises(ValidationError):
        MediaSettings(ladder="720:2800")  # rungs are NAMEp:KBPS
