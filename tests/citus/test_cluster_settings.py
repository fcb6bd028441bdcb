"""The Citus topology in settings (postgres.citus_*, postgres.bin_dir): the embedded workers' ports,
workers lmsd does not run, bad values refused in one line, and where lmsd finds PostgreSQL.

No cluster is started here: these run with or without Citus installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmsd.errors import Invalid, OperationFailed
from lmsd.runtime import binaries, citus, components
from lmsd.settings import load_settings, read_config_file, set_config_value


@pytest.fixture(autouse=True)
def _no_lmsd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LMSD_"):
            monkeypatch.delenv(name)


def test_no_workers_is_plain_postgresql(tmp_path: Path) -> None:
    pg = load_settings(tmp_path).postgres
    assert (pg.citus_workers, pg.citus_enabled, pg.citus_worker_addresses(), pg.bin_dir) == (0, False, [], "")
    assert not any(owner.startswith("Citus") for owner, _ in load_settings(tmp_path).ports())


def test_embedded_workers_listen_after_the_primary(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, postgres={"port": 7000, "citus_workers": 3})
    pg = settings.postgres
    assert pg.citus_enabled
    assert pg.citus_worker_ports() == [7020, 7021, 7022]
    assert pg.citus_worker_addresses() == [("127.0.0.1", 7020), ("127.0.0.1", 7021), ("127.0.0.1", 7022)]
    assert [p for owner, p in settings.ports() if owner.startswith("Citus worker")] == [7020, 7021, 7022]
    moved = load_settings(tmp_path, postgres={"port": 7000, "citus_workers": 2, "citus_worker_port": 9100})
    assert moved.postgres.citus_worker_ports() == [9100, 9101]


def test_workers_lmsd_does_not_run(tmp_path: Path) -> None:
    set_config_value(tmp_path, "postgres.citus_worker_nodes", "w1.example.edu:5432,[2001:db8::9]:5432")
    pg = load_settings(tmp_path).postgres
    assert pg.citus_enabled and pg.citus_workers == 0 and pg.citus_worker_ports() == []
    assert pg.citus_worker_addresses() == [("w1.example.edu", 5432), ("2001:db8::9", 5432)]
    assert read_config_file(tmp_path)["postgres"]["citus_worker_nodes"] == ["w1.example.edu:5432", "[2001:db8::9]:5432"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"citus_workers": -1}, "postgres.citus_workers"),
        ({"citus_workers": 17}, "postgres.citus_workers"),
        ({"citus_workers": 2, "citus_worker_nodes": ["w1:5432"]}, "set only one"),
        ({"citus_workers": 2, "replicas": 1}, "read replicas with Citus are not supported yet"),
        ({"citus_worker_nodes": ["w1:5432"], "nodes": ["p:5432", "r:5432"]}, "read replicas with Citus"),
        ({"citus_worker_nodes": ["w1"]}, "is not host:port"),
        ({"citus_workers": 2, "port": 7001, "citus_worker_port": 7000}, "among the Citus workers' ports"),
        ({"citus_workers": 4, "citus_worker_port": 65534}, "go past 65535"),
        ({"citus_workers": 1, "citus_worker_port": 8810}, "port 8810 is given to both"),
        ({"citus_shard_count": 0}, "postgres.citus_shard_count"),
    ],
)
def test_bad_topologies_are_refused_in_one_line(tmp_path: Path, values: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        load_settings(tmp_path, postgres=values)
    assert "\n" not in str(caught.value)


def test_config_set_refuses_a_bad_worker_count_and_keeps_the_file(tmp_path: Path) -> None:
    set_config_value(tmp_path, "postgres.citus_workers", "2")
    with pytest.raises(Invalid, match="citus_workers"):
        set_config_value(tmp_path, "postgres.citus_workers", "99")
    assert read_config_file(tmp_path) == {"postgres": {"citus_workers": 2}}


def test_bin_dir_is_where_lmsd_finds_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = binaries.postgres_bin_dir()
    assert binaries.postgres_bin_dir(load_settings(tmp_path)) == wheel
    settings = load_settings(tmp_path, postgres={"bin_dir": str(wheel)})
    assert binaries.postgres_tool("initdb", settings) == wheel / "initdb"
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    with pytest.raises(OperationFailed, match=f"PostgreSQL binaries not found in {empty} \\(postgres.bin_dir\\)"):
        binaries.postgres_bin_dir(load_settings(tmp_path, postgres={"bin_dir": str(empty)}))
    monkeypatch.setenv("LMSD_POSTGRES__BIN_DIR", str(empty))  # callers without settings: the same override
    with pytest.raises(OperationFailed, match="postgres.bin_dir"):
        binaries.postgres_tool("pg_config")


def test_components_run_workers_before_the_coordinator(tmp_path: Path) -> None:
    from lmsd import credentials

    settings = load_settings(tmp_path, postgres={"citus_workers": 2})
    secrets, _ = credentials.ensure(tmp_path)
    comps = components.build(settings, secrets)
    names = [c.name for c in comps]
    assert names[:4] == ["postgres-worker-1", "postgres-worker-2", "postgres", "nats"]
    worker = comps[0]
    assert worker.argv[-1] == citus.worker_dir(settings, 1) and worker.required
    assert worker.env["PGPASSFILE"] == str(citus.worker_dir(settings, 1) / citus.PGPASS)
    plain = components.build(load_settings(tmp_path), secrets)
    assert [c.name for c in plain][:2] == ["postgres", "nats"] and plain[0].env == {}


def test_pgpass_holds_both_roles_and_is_private(tmp_path: Path) -> None:
    from lmsd import credentials

    settings = load_settings(tmp_path, postgres={"citus_workers": 1})
    secrets, _ = credentials.ensure(tmp_path)
    path = citus.write_pgpass(settings, secrets, tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    assert f"127.0.0.1:*:*:postgres:{secrets.postgres_superuser_password}" in lines
    assert f"127.0.0.1:*:*:lmsd:{secrets.postgres_password}" in lines
    assert citus._pgpass_field("a:b\\c") == "a\\:b\\\\c"


def test_a_worker_is_made_on_its_first_start_with_citus_preloaded(tmp_path: Path) -> None:
    import asyncio

    from lmsd import credentials

    settings = load_settings(tmp_path, postgres={"port": 7000, "citus_workers": 2, "citus_shard_count": 8})
    secrets, _ = credentials.ensure(tmp_path)
    asyncio.run(citus.prepare_worker(settings, secrets, 2))  # `citus_workers` raised by hand: made here
    data = citus.worker_dir(settings, 2)
    assert (data / "PG_VERSION").exists() and (data / citus.PGPASS).exists()
    conf = (data / "lmsd.conf").read_text().splitlines()
    for line in ("port = 7021", "shared_preload_libraries = 'citus'", "wal_level = logical", "citus.shard_count = 8"):
        assert line in conf
    assert not citus.initdb_worker(settings, secrets, 2)  # made once
    plain = load_settings(tmp_path).postgres
    assert not plain.citus_enabled
