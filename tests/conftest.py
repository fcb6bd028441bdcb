"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db import Database, start_database
from tests.support import Campus, new_campus


@pytest.fixture
def campus(tmp_path: Path) -> Iterator[Campus]:
    """A campus installed and running for one test; stopped afterwards whatever happens."""
    c = new_campus(tmp_path / "data")
    result = c.install()
    assert result.returncode == 0, result.stdout + result.stderr
    yield c
    c.lmsd("down", timeout=120)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Campus]:
    """A campus not installed yet (the test installs it); stopped afterwards."""
    c = new_campus(tmp_path / "data")
    yield c
    if (c.data_dir / "config.toml").exists():
        c.lmsd("down", timeout=120)


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated PostgreSQL per test worker, with campus A and its admin."""
    db = start_database(tmp_path_factory.mktemp("pg") / "data")
    yield db
    db.stop()


@pytest.fixture(scope="module")
def shared_campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One running campus for a whole module of read-mostly tests."""
    c = new_campus(tmp_path_factory.mktemp("campus") / "data")
    result = c.install()
    assert result.returncode == 0, result.stdout + result.stderr
    yield c
    c.lmsd("down", timeout=120)
