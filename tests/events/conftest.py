"""One running campus for the event suites that only add data to it (test_learning_record and
test_stream_relay): installed once per worker instead of once per module. The fault suite makes
its own campuses (it stops PostgreSQL and NATS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import running_campus
from tests.support import Campus


@pytest.fixture(scope="package")
def shared_campus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    yield from running_campus(tmp_path_factory)
