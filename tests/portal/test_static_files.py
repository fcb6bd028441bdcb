"""/static/ on the API app: types, caching validators, 404 problems, no way out of the folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from lmsd import credentials
from lmsd.portal import static_files
from lmsd.portal.static_files import STATIC_DIR, asset_url, resolve, static_file
from lmsd.server.errors import HANDLERS
from lmsd.settings import Settings


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    """The handler with the API's error handlers (the whole app: test_the_api_app_serves_static)."""
    app = Litestar(route_handlers=[static_file], exception_handlers=HANDLERS)  # type: ignore[arg-type]
    with TestClient(app) as c:
        yield c


def test_the_api_app_serves_static(tmp_path: Path) -> None:
    from lmsd.app import create_app

    app = create_app(Settings(data_dir=tmp_path), credentials.generate())
    with TestClient(app) as c:
        r = c.get("/static/player.js")
        assert r.status_code == 200 and r.headers["content-type"] == "text/javascript; charset=utf-8"
        missing = c.get("/static/nope.js")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith(
            "application/problem+json"
        )
    assert "/static/{path:path}" not in app.openapi_schema.to_schema()["paths"]


def test_player_script_is_javascript_cacheable_and_not_sniffed(client: TestClient) -> None:  # type: ignore[type-arg]
    r = client.get("/static/player.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=86400"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["etag"] and r.headers["last-modified"]
    assert r.content == (STATIC_DIR / "player.js").read_bytes()
    assert client.get("/static/player.css").headers["content-type"] == "text/css; charset=utf-8"


def test_vendor_hls_is_built_and_served(client: TestClient) -> None:  # type: ignore[type-arg]
    # Built by scripts/bootstrap (npm ci + npm run build); a wheel carries it as an artifact.
    for name in ("hls.min.js", "tus.min.js"):
        r = client.get(f"/static/vendor/{name}")
        assert r.status_code == 200, f"{name}: run scripts/bootstrap"
        assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "sourceMappingURL" not in client.get("/static/vendor/hls.min.js").text[-200:]


def test_revalidation_answers_304(client: TestClient) -> None:  # type: ignore[type-arg]
    first = client.get("/static/player.js")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = client.get("/static/player.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=86400"
    assert client.get("/static/player.js", headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert client.get("/static/player.js", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/static/player.js", headers={"If-None-Match": '"other"'}).status_code == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get("/static/player.js", headers={"If-Modified-Since": old}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.js",
        "/static/vendor/",
        "/static/../web/package.json",
        "/static/%2e%2e/web/package.json",
        "/static/vendor/%2e%2e/%2e%2e/web/package.json",
        "/static/..%2fweb%2fpackage.json",
        "/static/%2e%2e%2f%2e%2e%2fportal%2fweb%2fpackage.json",
        "/static/vendor/..%5c..%5cweb%5cpackage.json",
        "/static//etc/passwd.txt",
        "/static/.hidden.js",
        "/static/video.py",
    ],
)
def test_missing_or_outside_is_a_404_problem(client: TestClient, path: str) -> None:  # type: ignore[type-arg]
    r = client.get(path)
    assert r.status_code == 404, path
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 404


def test_resolve_stays_inside_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.js").write_text("ok")
    (tmp_path / "secret.js").write_text("no")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    assert resolve("sub/a.js", root) == (root / "sub" / "a.js").resolve()
    for bad in ("../secret.js", "sub/../../secret.js", "link.js", "/../secret.js", "sub\\..\\..\\secret.js",
                "sub/./a.js", "", "sub/a.exe", ".git/config.js", "a\0.js"):  # fmt: skip
        assert resolve(bad, root) is None, bad


def test_asset_url_busts_caches_with_the_content_hash() -> None:
    url = asset_url("player.css")
    assert url.startswith("/static/player.css?v=") and len(url.split("v=")[1]) == 12
    with pytest.raises(ValueError):
        asset_url("../controller.py")


def test_precompressed_copies_are_sent_to_browsers_that_take_them(client: TestClient) -> None:  # type: ignore[type-arg]
    # made by `npm run build` (brotli 11, gzip 9) into static_compressed/
    source = (STATIC_DIR / "vendor" / "hls.min.js").read_bytes()
    br = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "gzip, br"})
    assert br.headers["content-encoding"] == "br" and br.headers["vary"] == "Accept-Encoding"
    assert int(br.headers["content-length"]) < len(source) // 3
    assert br.headers["etag"].endswith('-br"')
    gz = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.content == source  # decoded by the client
    plain = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == source
    refused = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "br;q=0, gzip;q=0"})
    assert "content-encoding" not in refused.headers
    # a 304 is per representation: the gzip copy's validator does not match the plain one
    again = client.get("/static/vendor/hls.min.js", headers={"accept-encoding": "identity", "if-none-match": gz.headers["etag"]})
    assert again.status_code == 200
    # images are not compressed again
    assert "vary" not in client.get("/static/icons/icon-192.png", headers={"accept-encoding": "br"}).headers


def test_a_stale_compressed_copy_is_not_used(client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    stale = tmp_path / "player.js.gz"
    stale.write_bytes(b"not the current file")
    import os

    old = (STATIC_DIR / "player.js").stat().st_mtime_ns - 10**9
    os.utime(stale, ns=(old, old))
    monkeypatch.setattr(static_files, "COMPRESSED_DIR", tmp_path)
    r = client.get("/static/player.js", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in r.headers and r.content == (STATIC_DIR / "player.js").read_bytes()


def test_our_scripts_are_served_minified_when_built() -> None:
    url = asset_url("player.js")
    assert url.startswith("/static/min/player.js?v="), url
    minified = (STATIC_DIR / "min" / "player.js").read_bytes()
    assert len(minified) < (STATIC_DIR / "player.js").stat().st_size * 0.7
