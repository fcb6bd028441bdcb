"""Where PostgreSQL and NATS are: settings with the embedded profile's defaults, set in the file or
by LMSD_* variables, bad values refused in one line (at load and by `lmsd config set`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmsd.errors import Invalid
from lmsd.settings import load_settings, read_config_file, set_config_value, write_config_file


@pytest.fixture(autouse=True)
def _no_lmsd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LMSD_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_servers_on_loopback(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, postgres={"replicas": 2})
    pg, nats = settings.postgres, settings.nats
    assert (pg.host, pg.port, pg.sslmode, pg.ssl_ca_file, pg.nodes) == ("127.0.0.1", 8832, "disable", "", [])
    assert pg.node_addresses() == [("127.0.0.1", 8832), ("127.0.0.1", 8833), ("127.0.0.1", 8834)]
    assert (nats.host, nats.port, nats.tls) == ("127.0.0.1", 8842, False)


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config_file(
        tmp_path,
        {
            "postgres": {"host": "db.example.edu", "port": 5432, "sslmode": "verify-full"},
            "nats": {"host": "bus.example.edu", "port": 4222, "tls": True},
        },
    )
    settings = load_settings(tmp_path)
    assert settings.postgres.node_addresses() == [("db.example.edu", 5432)]
    assert (settings.nats.host, settings.nats.port, settings.nats.tls) == ("bus.example.edu", 4222, True)
    monkeypatch.setenv("LMSD_POSTGRES__HOST", "DB-2.Example.EDU")
    monkeypatch.setenv("LMSD_POSTGRES__PORT", "6432")
    monkeypatch.setenv("LMSD_POSTGRES__SSLMODE", "require")
    monkeypatch.setenv("LMSD_NATS__HOST", "2001:db8::7")
    monkeypatch.setenv("LMSD_NATS__TLS", "false")
    settings = load_settings(tmp_path)
    assert (settings.postgres.host, settings.postgres.port, settings.postgres.sslmode) == ("db-2.example.edu", 6432, "require")
    assert (settings.nats.host, settings.nats.port, settings.nats.tls) == ("2001:db8::7", 4222, False)


def test_nodes_name_the_primary_then_the_replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSD_POSTGRES__NODES", '["pg-0.internal:5432", "[2001:db8::2]:5433", "10.0.0.3:5434"]')
    settings = load_settings(tmp_path)
    assert settings.postgres.node_addresses() == [("pg-0.internal", 5432), ("2001:db8::2", 5433), ("10.0.0.3", 5434)]
    assert settings.postgres.replica_ports() == []  # lmsd starts no replica of a database it does not run
    set_config_value(tmp_path, "postgres.nodes", "a.example:5432,b.example:5432")
    assert read_config_file(tmp_path) == {"postgres": {"nodes": ["a.example:5432", "b.example:5432"]}}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"postgres": {"port": 0}}, "port 0 is outside 1..65535"),
        ({"postgres": {"port": 65536}}, "port 65536 is outside 1..65535"),
        ({"nats": {"port": 70000}}, "port 70000 is outside 1..65535"),
        ({"postgres": {"host": ""}}, "the host is empty"),
        ({"nats": {"host": "  "}}, "the host is empty"),
        ({"postgres": {"host": "db host!"}}, "not a host name or an IP address"),
        ({"postgres": {"sslmode": "sometimes"}}, "postgres.sslmode"),
        ({"postgres": {"nodes": ["db.example.edu"]}}, "is not host:port"),
        ({"postgres": {"nodes": ["db.example.edu:0"]}}, "port 0 is outside"),
        ({"postgres": {"nodes": [":5432"]}}, "the host is empty"),
        ({"postgres": {"nodes": ["a:5432"], "replicas": 1}}, "set only one"),
        ({"postgres": {"ssl_ca_file": "/ca.pem"}}, "verify-ca or verify-full"),
        ({"nats": {"tls_ca_file": "/ca.pem"}}, "nats.tls = true"),
    ],
)
def test_bad_addresses_are_refused_in_one_line_at_load(tmp_path: Path, values: dict, message: str) -> None:
    write_config_file(tmp_path, values)
    with pytest.raises(Invalid) as err:
        load_settings(tmp_path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_bad_environment_value_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSD_NATS__PORT", "0")
    with pytest.raises(Invalid, match=r"nats\.port: .*port 0 is outside 1\.\.65535"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("postgres.port", "0", "port 0 is outside 1..65535"),
        ("nats.port", "65536", "port 65536 is outside 1..65535"),
        ("postgres.host", "", "the host is empty"),
        ("nats.host", "", "the host is empty"),
        ("postgres.sslmode", "maybe", "postgres.sslmode"),
        ("nats.tls", "maybe", "not true or false"),
        ("postgres.nodes", "db.example.edu", "is not host:port"),
    ],
)
def test_config_set_refuses_bad_addresses(tmp_path: Path, key: str, value: str, message: str) -> None:
    set_config_value(tmp_path, "postgres.host", "db.example.edu")
    with pytest.raises(Invalid) as err:
        set_config_value(tmp_path, key, value)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert read_config_file(tmp_path) == {"postgres": {"host": "db.example.edu"}}  # nothing written


def test_config_set_takes_good_addresses(tmp_path: Path) -> None:
    set_config_value(tmp_path, "postgres.sslmode", "verify-full")
    set_config_value(tmp_path, "postgres.ssl_ca_file", "/etc/ssl/campus-ca.pem")
    set_config_value(tmp_path, "nats.tls", "true")
    settings = set_config_value(tmp_path, "nats.port", "4222")
    assert (settings.postgres.sslmode, settings.postgres.ssl_ca_file) == ("verify-full", "/etc/ssl/campus-ca.pem")
    assert (settings.nats.tls, settings.nats.port) == (True, 4222)


def test_lmsd_config_set_says_it_in_one_red_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "lmsd", "--data-dir", str(tmp_path), "config", "set", "postgres.port", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "port 0 is outside 1..65535" in lines[0], lines
    assert not (tmp_path / "config.toml").exists()
