"""tests.enrolments.test_teach_services on Citus (see __init__.py)."""

from tests.enrolments.test_teach_services import *  # noqa: F403
