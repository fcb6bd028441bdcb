"""Fixtures of the portal's suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lmsd.portal import i18n


@pytest.fixture(autouse=True)
def language_restored() -> Iterator[None]:
    """A test that activates a language in-process (French messages, Spanish dates) leaves the
    default behind it: the worker's next module, e.g. the player's page, renders in English."""
    yield
    i18n.activate(i18n.DEFAULT)
