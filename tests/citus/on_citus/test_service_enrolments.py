"""tests.enrolments.test_service_enrolments on Citus (see __init__.py)."""

from tests.enrolments.test_service_enrolments import *  # noqa: F403
