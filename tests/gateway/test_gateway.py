"""The Rust gateway through its real binary: in front of a real campus (`lmsd up`), and alone in
front of a stub upstream where the headers it forwards can be seen."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lmsd.media.signing import sign_media_path
from lmsd.runtime import binaries
from tests.support import ADMIN_PASSWORD, Campus, free_port_block, secrets_of

pytestmark = pytest.mark.slow


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _raw(port: int, request: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes (paths an HTTP client would normalise) and read until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(request)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


# ------------------------------------------------------------------ in front of a real campus


def test_campus_api_and_portal_behind_the_gateway(shared_campus: Campus) -> None:
    url = shared_campus.url
    login = httpx.post(url + "/api/v1/auth/login", json={"email": "admin@test.example", "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    assert "ratelimit-remaining" in login.headers  # the gateway's login budget
    token = login.json()["access_token"]
    me = httpx.get(url + "/api/v1/me", headers={"authorization": f"Bearer {token}", "x-lmsd-user": str(uuid.uuid4())})
    assert me.status_code == 200 and me.json()["email"] == "admin@test.example"
    assert httpx.get(url + "/api/v1/campus").status_code == 200  # public
    portal = httpx.get(url + "/", follow_redirects=True)  # the portal: its sign-in page
    assert portal.status_code == 200 and portal.url.path == "/login"

    # The gateway refuses bad tokens itself (its 401 carries WWW-Authenticate).
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    secrets = secrets_of(shared_campus.data_dir)
    real_key = serialization.load_pem_private_key(secrets["jwt_signing_key_pem"].encode(), None)
    now = int(time.time())
    bad = {
        "missing": None,
        "malformed": "not.a.jwt",
        "expired": jwt.encode({**claims, "exp": now - 5}, real_key, algorithm="EdDSA", headers=header),  # type: ignore[arg-type]
        "wrong audience": jwt.encode({**claims, "aud": "other"}, real_key, algorithm="EdDSA", headers=header),  # type: ignore[arg-type]
        "wrong issuer": jwt.encode({**claims, "iss": "http://evil.test"}, real_key, algorithm="EdDSA", headers=header),  # type: ignore[arg-type]
        "wrong key": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{_b64(claims)}.",
    }
    for name, value in bad.items():
        headers = {"authorization": f"Bearer {value}"} if value else {}
        r = httpx.get(url + "/api/v1/me", headers=headers)
        assert r.status_code == 401, name
        assert r.headers["content-type"] == "application/problem+json", name
        assert r.headers["www-authenticate"].startswith("Bearer"), name

    # Health, readiness and metrics of the gateway itself.
    assert httpx.get(url + "/healthz").json()["service"] == "lmsd-gateway"
    assert httpx.get(url + "/readyz").status_code == 200
    metrics = httpx.get(url + "/metrics").text
    assert 'lmsd_gateway_requests_total{route="api",status="2xx"}' in metrics
    assert "lmsd_gateway_auth_failures_total" in metrics


def test_signed_media_from_the_data_dir(shared_campus: Campus) -> None:
    key_file = shared_campus.data_dir / "run" / "gateway-media.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    folder = shared_campus.data_dir / "media" / "course-1" / "intro"
    folder.mkdir(parents=True, exist_ok=True)
    segment = bytes(range(256)) * 16
    (folder / "seg0.ts").write_bytes(segment)
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n#EXT-X-ENDLIST\n")
    key = secrets_of(shared_campus.data_dir)["media_signing_key"]
    exp = int(time.time()) + 300

    url = f"{shared_campus.url}/media/course-1/intro/seg0.ts?{sign_media_path(key, '/media/course-1/intro/seg0.ts', exp)}"
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == segment
    assert r.headers["content-type"] == "video/mp2t"
    part = httpx.get(url, headers={"range": "bytes=16-31"})
    assert part.status_code == 206 and part.content == segment[16:32]

    # A scoped grant: the playlist passes it on to its segments.
    query = sign_media_path(key, "/media/course-1/intro/", exp)
    playlist = httpx.get(f"{shared_campus.url}/media/course-1/intro/index.m3u8?{query}")
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert f"seg0.ts?{query}" in playlist.text
    assert httpx.get(f"{shared_campus.url}/media/course-1/intro/seg0.ts?{query}").status_code == 200

    for refused in (
        url.replace(f"exp={exp}", f"exp={exp + 1}"),  # tampered expiry
        f"{shared_campus.url}/media/course-1/intro/seg0.ts",  # unsigned
        f"{shared_campus.url}/media/course-1/intro/seg0.ts?{sign_media_path(key, '/media/course-1/intro/seg0.ts', 1)}",
        f"{shared_campus.url}/media/course-1/intro/seg0.ts?{sign_media_path('another-key-entirely', '/media/course-1/intro/seg0.ts', exp)}",
    ):
        assert httpx.get(refused).status_code == 403, refused
    port = shared_campus.ports["http"]
    for path in (b"/media/../secrets/secrets.toml", b"/media/%2e%2e/secrets/secrets.toml", b"/media/course-1/..%2f..%2fconfig.toml"):
        answer = _raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


# ------------------------------------------------------------------ the binary alone


class _Stub(BaseHTTPRequestHandler):
    """Echoes request headers as JSON; publishes a JWKS; /slow answers after a second."""

    protocol_version = "HTTP/1.1"
    jwks: dict[str, object] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path == "/api/v1/auth/jwks.json":
            body = json.dumps(self.jwks).encode()
        else:
            if self.path.startswith("/slow"):
                time.sleep(1.0)
            body = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return


class _Gateway:
    def __init__(self, port: int, process: subprocess.Popen[bytes], key: Ed25519PrivateKey) -> None:
        self.port, self.process, self.key = port, process, key
        self.url = f"http://127.0.0.1:{port}"

    def token(self, user: str) -> str:
        now = int(time.time())
        claims = {"iss": "http://stub.test", "aud": "lmsd", "sub": user, "campus": str(uuid.uuid4()),
                  "role": "learner", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": "k1"})


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[_Gateway]:
    key = Ed25519PrivateKey.generate()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    _Stub.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "EdDSA", "use": "sig"}]}
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    port = free_port_block(1)
    config = tmp_path / "gateway.toml"
    # The config file is one of the gateway's layers; the environment still wins over it.
    config.write_text(
        f'upstreams = ["http://127.0.0.1:{stub.server_address[1]}"]\n'
        'jwt_issuer = "http://stub.test"\n'
        'trusted_proxies = ["127.0.0.1"]\n'
        'rate_read = "1/m:5"\n'
        "header_timeout_secs = 1\n"
        "max_header_bytes = 8192\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "LMSD_GATEWAY_CONFIG": str(config),
           "LMSD_GATEWAY_LISTEN": f"127.0.0.1:{port}", "LMSD_LOG": "warn"}
    process = subprocess.Popen([binaries.rust_binary("lmsd-gateway")], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    yield _Gateway(port, process, key)
    if process.poll() is None:
        process.terminate()
        process.wait(10)
    stub.shutdown()


def test_identity_headers_cannot_be_forged(gateway: _Gateway) -> None:
    user = str(uuid.uuid4())
    forged = {"x-lmsd-user": str(uuid.uuid4()), "x-lmsd-role": "admin", "x-lmsd-whatever": "1"}
    seen = httpx.get(gateway.url + "/api/v1/me", headers={**forged, "authorization": f"Bearer {gateway.token(user)}"})
    headers = seen.json()["headers"]
    assert headers["x-lmsd-user"] == user and headers["x-lmsd-role"] == "learner"
    assert "x-lmsd-whatever" not in headers
    anonymous = httpx.get(gateway.url + "/", headers=forged).json()["headers"]
    assert not any(name.startswith("x-lmsd-") and name != "x-lmsd-client-ip" for name in anonymous)
    assert httpx.get(gateway.url + "/api/v1/me", headers=forged).status_code == 401


def test_a_flood_from_one_client_does_not_stop_another(gateway: _Gateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        flood = [client.get("/page", headers={"x-forwarded-for": "198.51.100.7"}).status_code for _ in range(30)]
        assert flood[:5] == [200] * 5 and set(flood[5:]) == {429}
        limited = client.get("/page", headers={"x-forwarded-for": "198.51.100.7"})
        assert int(limited.headers["retry-after"]) >= 1 and limited.headers["ratelimit-remaining"] == "0"
        assert limited.headers["content-type"] == "application/problem+json"
        other = [client.get("/page", headers={"x-forwarded-for": "198.51.100.8"}).status_code for _ in range(5)]
        assert other == [200] * 5


def test_oversized_and_slow_clients(gateway: _Gateway) -> None:
    huge = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"x" * 20000 + b"\r\nConnection: close\r\n\r\n"
    assert _raw(gateway.port, huge).startswith(b"HTTP/1.1 431")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Dribble: ")
        assert httpx.get(gateway.url + "/", headers={"x-forwarded-for": "198.51.100.9"}).status_code == 200
        while slow.recv(1024):
            pass  # the gateway closes the connection after the header timeout
    assert time.monotonic() - started < 4
    declared = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 209715200\r\nConnection: close\r\n\r\n"
    assert _raw(gateway.port, declared + b"x" * 1024).startswith(b"HTTP/1.1 413")


def test_sigterm_drains_in_flight_requests(gateway: _Gateway) -> None:
    result: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: result.append(httpx.get(gateway.url + "/slow", timeout=10)))
    worker.start()
    time.sleep(0.3)
    gateway.process.send_signal(signal.SIGTERM)
    worker.join(10)
    assert result and result[0].status_code == 200
    assert gateway.process.wait(10) == 0


# ------------------------------------------------------------------ a rate budget shared through NATS


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen([binaries.rust_binary("lmsd-gateway")], env=env, stderr=handle)
    handle.close()
    url = f"http://{env['LMSD_GATEWAY_LISTEN']}/healthz"
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(url).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def _metric(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _wait_for(check: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_two_gateways_share_one_rate_budget_through_nats(tmp_path: Path) -> None:
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    base = free_port_block(3)
    nats_port, ports = base, (base + 1, base + 2)
    nats = subprocess.Popen(
        [str(binaries.nats_server()), "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", str(tmp_path / "js")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    gateways: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            env = {
                "PATH": os.environ.get("PATH", ""),
                "LMSD_GATEWAY_LISTEN": f"127.0.0.1:{port}",
                "LMSD_GATEWAY_UPSTREAMS": f"http://127.0.0.1:{stub.server_address[1]}",
                "LMSD_GATEWAY_TRUSTED_PROXIES": "127.0.0.1",  # so X-Forwarded-For picks the client
                "LMSD_GATEWAY_RATE_READ": "10/m:10",
                "LMSD_GATEWAY_SHARED_RATE_NATS_URL": f"nats://127.0.0.1:{nats_port}",
                "LMSD_LOG": "info,lmsd_gateway::access=off",
            }
            gateways.append(_start(env, tmp_path / f"gateway-{i}.log"))
        for port in ports:
            _wait_for(lambda port=port: _metric(port, "lmsd_gateway_shared_rate_up") == 1, "NATS in use")

        # One client alternating between the two replicas: 10 in all, not 10 each.
        client = {"x-forwarded-for": "203.0.113.5"}
        codes = [httpx.get(f"http://127.0.0.1:{ports[i % 2]}/page", headers=client).status_code for i in range(30)]
        allowed = [i for i, code in enumerate(codes) if code == 200]
        assert len(allowed) == 10, codes
        assert {i % 2 for i in allowed} == {0, 1}  # both replicas served some
        assert set(codes) == {200, 429}
        refused = httpx.get(f"http://127.0.0.1:{ports[0]}/page", headers=client)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1

        # NATS gone: each replica falls back to its own (full) local budget, and says so.
        nats.terminate()
        nats.wait(10)
        other = {"x-forwarded-for": "203.0.113.6"}
        codes = [httpx.get(f"http://127.0.0.1:{ports[0]}/page", headers=other).status_code for _ in range(12)]
        assert codes == [200] * 10 + [429] * 2, codes
        assert _metric(ports[0], "lmsd_gateway_shared_rate_up") == 0
        assert _metric(ports[0], "lmsd_gateway_shared_rate_fallbacks_total") >= 1
        _wait_for(lambda: "falling back to local limits" in (tmp_path / "gateway-0.log").read_text(), "fallback logged")
    finally:
        for process in gateways:
            process.terminate()
            process.wait(10)
        if nats.poll() is None:
            nats.terminate()
            nats.wait(10)
        stub.shutdown()
