"""tests.identity.test_api_identity on Citus (see __init__.py)."""

from tests.identity.test_api_identity import *  # noqa: F403
