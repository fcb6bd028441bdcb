"""Switch the suites imported here to Citus (see __init__.py): LMSD_TEST_CITUS=1 for the package's
tests (campuses install with --citus-workers 2, tests.support.on_citus) and ``database`` on the
Citus cluster of this test worker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.citus import citus_installed
from tests.conftest import running_campus
from tests.db import Database
from tests.portal.conftest import language_restored  # noqa: F401  (the portal suite's own fixture)
from tests.support import Campus


@pytest.fixture(scope="package", autouse=True)
def on_citus_env() -> Iterator[None]:
    if not citus_installed():
        pytest.skip("Citus is not installed in the pgserver PostgreSQL (scripts/citus installs it)")
    before = os.environ.get("LMSD_TEST_CITUS")
    os.environ["LMSD_TEST_CITUS"] = "1"
    yield
    if before is None:
        os.environ.pop("LMSD_TEST_CITUS", None)
    else:
        os.environ["LMSD_TEST_CITUS"] = before


@pytest.fixture(scope="session")
def database(citus_database: Database) -> Database:
    """The in-process API's database: campus A on this worker's Citus cluster."""
    return citus_database


@pytest.fixture(scope="package")
def shared_campus(on_citus_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    """One Citus campus for the event suites that only add data to it (as tests/events/conftest.py)."""
    yield from running_campus(tmp_path_factory)
