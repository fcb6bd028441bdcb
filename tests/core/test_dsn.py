"""Connection strings from the settings: hosts, ports, sslmode, the nodes, quoted passwords; and
that asyncpg and SQLAlchemy read them back as meant."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from sqlalchemy.engine import make_url

from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.db.dsn import app_dsn, connect_args, engine_url, replica_count, ssl_arg
from lmsd.events.connection import nats_tls, nats_url
from lmsd.settings import Settings, load_settings

NASTY = "p@ss:w/rd?#%&= é'\""


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    made, _ = credentials.ensure(tmp_path)
    return made.model_copy(update={"postgres_password": NASTY})


def settings(tmp_path: Path, **postgres: object) -> Settings:
    return load_settings(tmp_path, postgres=postgres)


def test_defaults_are_the_embedded_primary_on_loopback(tmp_path: Path, secrets: Secrets) -> None:
    s = settings(tmp_path)
    url = urlsplit(app_dsn(s, secrets))
    assert (url.scheme, url.hostname, url.port, url.path, url.query) == (
        "postgresql", "127.0.0.1", 8832, "/lmsd", "sslmode=disable"
    )
    assert (unquote(url.username or ""), unquote(url.password or "")) == ("lmsd", NASTY)
    assert replica_count(s) == 0
    assert ssl_arg(s) == "disable"


def test_host_port_user_database_and_sslmode_follow_the_settings(tmp_path: Path, secrets: Secrets) -> None:
    s = settings(tmp_path, host="db.example.edu", port=6432, user="campus app", database="lms/prod", sslmode="require")
    url = urlsplit(app_dsn(s, secrets))
    assert (url.hostname, url.port, url.query) == ("db.example.edu", 6432, "sslmode=require")
    assert (unquote(url.username or ""), unquote(url.path[1:])) == ("campus app", "lms/prod")
    assert connect_args(s, timeout=3) == {"ssl": "require", "timeout": 3}


def test_sqlalchemy_reads_the_engine_url_back_exactly(tmp_path: Path, secrets: Secrets) -> None:
    s = settings(tmp_path, host="db.example.edu", port=6432, sslmode="verify-full")
    url = make_url(engine_url(s, secrets))
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "postgresql+asyncpg", "db.example.edu", 6432, "lmsd", NASTY, "lmsd"
    )
    assert not url.query  # asyncpg.connect takes no sslmode keyword: TLS goes in connect_args


def test_asyncpg_reads_the_dsn_back_exactly(tmp_path: Path, secrets: Secrets) -> None:
    from asyncpg.connect_utils import _parse_connect_dsn_and_args

    s = settings(tmp_path, nodes=["[2001:db8::1]:5432"], sslmode="prefer")
    addrs, params = _parse_connect_dsn_and_args(
        dsn=app_dsn(s, secrets), host=None, port=None, user=None, password=None, passfile=None,
        database=None, ssl=None, direct_tls=None, server_settings=None, target_session_attrs=None,
        krbsrvname=None, gsslib=None, service=None, servicefile=None,
    )
    assert addrs == [("2001:db8::1", 5432)]
    assert (params.user, params.password, params.database) == ("lmsd", NASTY, "lmsd")


def test_nodes_give_the_primary_then_each_replica(tmp_path: Path, secrets: Secrets) -> None:
    s = settings(tmp_path, nodes=["pg-0.internal:5432", "pg-1.internal:5433", "[2001:db8::2]:5434"])
    assert replica_count(s) == 2
    hosts = [(urlsplit(app_dsn(s, secrets, node=n)).hostname, urlsplit(app_dsn(s, secrets, node=n)).port) for n in range(3)]
    assert hosts == [("pg-0.internal", 5432), ("pg-1.internal", 5433), ("2001:db8::2", 5434)]
    assert "@[2001:db8::2]:5434/" in engine_url(s, secrets, node=2)


def test_embedded_replicas_follow_the_primary_port(tmp_path: Path, secrets: Secrets) -> None:
    s = settings(tmp_path, port=7000, replicas=2)
    assert replica_count(s) == 2
    assert [urlsplit(app_dsn(s, secrets, node=n)).port for n in range(3)] == [7000, 7001, 7002]


def test_a_ca_file_gives_a_verifying_context(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(_SELF_SIGNED)
    full = ssl_arg(settings(tmp_path, sslmode="verify-full", ssl_ca_file=str(ca)))
    only_ca = ssl_arg(settings(tmp_path, sslmode="verify-ca", ssl_ca_file=str(ca)))
    assert isinstance(full, ssl.SSLContext) and isinstance(only_ca, ssl.SSLContext)
    assert (full.verify_mode, full.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert (only_ca.verify_mode, only_ca.check_hostname) == (ssl.CERT_REQUIRED, False)
    assert full.cert_store_stats()["x509_ca"] == 1


def test_nats_url_and_tls(tmp_path: Path) -> None:
    assert nats_url(load_settings(tmp_path)) == "nats://127.0.0.1:8842"
    assert nats_tls(load_settings(tmp_path)) is None
    remote = load_settings(tmp_path, nats={"host": "2001:db8::9", "port": 4222, "tls": True})
    assert nats_url(remote) == "tls://[2001:db8::9]:4222"
    context = nats_tls(remote)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


# A self-signed CA certificate (CN=lmsd test CA), only loaded, never trusted for anything.
_SELF_SIGNED = """-----BEGIN CERTIFICATE-----
MIIDETCCAfmgAwIBAgIUMjzrYdydsyg/IcQcEGHKlZkhjn4wDQYJKoZIhvcNAQEL
BQAwFzEVMBMGA1UEAwwMbG1zZCB0ZXN0IENBMCAXDTI2MTIwNzEzMTU1OFoYDzIx
MjYxMTEzMTMxNTU4WjAXMRUwEwYDVQQDDAxsbXNkIHRlc3QgQ0EwggEiMA0GCSqG
SIb3DQEBAQUAA4IBDwAwggEKAoIBAQDj5mYD27qn9Ilt1VDuzdMftZzJ0wuUQKvF
9KjPk1xWt3OVxhcXWzqCrblufqNIzkqAJqgBeISRx19ZU6nva6dsI+l0hyVAZRJO
N9VVB7nTNwHWapn30IkLeZAUmksfiHXrYAQjglu3I29NPJyiSPFLuxjNjYcYSF3G
vSQIZmZqWU50fPYNY9Moa4OB9eA/+DW8r6UIgU6a7Ymec8tOhGawNW83Bngva/Zr
xr6CMYmU+38q4RxHLUVpPSwPXET4M3/d2bgxF3MZ32ajiBvY7SDa13mrMzkE7673
3WRVzBgse5nvDbaubYpxCmYTvNnRzP6Es4wBJgkRS5Ydn7gB0ra/AgMBAAGjUzBR
MB0GA1UdDgQWBBRfxRSrDG52Qo7aI2e0nAjtrDkIGDAfBgNVHSMEGDAWgBRfxRSr
DG52Qo7aI2e0nAjtrDkIGDAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA
A4IBAQB9Kesegy0a1nDJbra68OvWAGhyRLJmPASQcUXmpFsdFGIvqGs6UlaA1ktO
hhZxxRLUEXAU//1AC2lB7lbhJ0z/GleXDNLgDjGohGxe84Z/Hu2nywRwYv0FazTX
P51v8SqB9AjSZ/UZo2tmZJB15bmHeW4D9K4AcYA+nz0eocHlNNw+Naax4XKJ5XS9
MqBOuJNuDzh1dFKWzi50s2t4OASzctGj8LcWQoaFqUT5qjYw6zKiZFiSN1j3yyy3
d/Y2Ibx6VWH873IERGV+YYnLtsppdaOokWpLvfNn1EYaiLYUocUdM/sjmmpqmL0K
S71n51R5zmzNVtcnkVerzg8F/feA
-----END CERTIFICATE-----
"""
