"""tests.portal.test_portal_learner on Citus (see __init__.py)."""

from tests.portal.test_portal_learner import *  # noqa: F403
