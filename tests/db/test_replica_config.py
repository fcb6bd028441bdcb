"""Replica settings, the secrets added for them, and the LSN token format (no processes)."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
import tomli_w

from lmsd import credentials
from lmsd.db.routing import format_lsn, parse_lsn
from lmsd.errors import Invalid
from lmsd.server.consistency import client_lsn
from lmsd.settings import load_settings


def test_an_old_secrets_file_gains_the_replication_password_once(tmp_path: Path) -> None:
    created, _ = credentials.ensure(tmp_path)
    path = credentials.secrets_path(tmp_path)
    old = created.model_dump()
    del old["postgres_replication_password"]  # as written by a release before replicas
    path.write_text(tomli_w.dumps(old))
    first = credentials.load(tmp_path)
    assert first.postgres_replication_password
    assert tomllib.loads(path.read_text())["postgres_replication_password"] == first.postgres_replication_password
    assert credentials.load(tmp_path).postgres_replication_password == first.postgres_replication_password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_replica_ports_follow_the_primary_and_are_checked(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, postgres={"port": 7000, "replicas": 2})
    assert settings.postgres.replica_ports() == [7001, 7002]
    assert ("PostgreSQL replica 2", 7002) in settings.ports()
    with pytest.raises(Invalid, match="7001"):
        load_settings(tmp_path, postgres={"port": 7000, "replicas": 1}, nats={"port": 7001})


def test_lsn_tokens() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/3000060") or 0) == "0/3000060"
    for bad in ("", "16", "x/y", "1/2/3", "123456789/0"):
        assert parse_lsn(bad) is None
    # The newest of header and cookie wins; a bad one is ignored.
    assert client_lsn({"x-lmsd-min-lsn": "0/10"}, {"lmsd_lsn": "0/20"}) == 0x20
    assert client_lsn({"x-lmsd-min-lsn": "junk"}, {}) is None
