"""Fixtures of the Citus suites: one raw cluster (coordinator + 2 workers) per test worker, and a
campus database migrated on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.citus import citus_installed
from tests.citus.cluster import CitusCluster
from tests.db import Database


@pytest.fixture(scope="session")
def citus_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CitusCluster]:
    """A coordinator and two workers, stopped at the end of the session."""
    if not citus_installed():
        pytest.skip("Citus is not installed in the pgserver PostgreSQL (scripts/citus installs it)")
    cluster = CitusCluster(tmp_path_factory.mktemp("citus"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def citus_database(citus_cluster: CitusCluster) -> Database:
    """Database ``lmsd`` on the cluster, every migration run through Citus, campus A and its admin."""
    return citus_cluster.campus("lmsd")
