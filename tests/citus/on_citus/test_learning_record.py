"""tests.events.test_learning_record on Citus (see __init__.py)."""

from tests.events.test_learning_record import *  # noqa: F403
