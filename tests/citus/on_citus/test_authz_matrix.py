"""tests.server.test_authz_matrix on Citus (see __init__.py)."""

from tests.server.test_authz_matrix import *  # noqa: F403
