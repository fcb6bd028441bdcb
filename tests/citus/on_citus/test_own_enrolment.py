"""tests.enrolments.test_own_enrolment on Citus (see __init__.py)."""

from tests.enrolments.test_own_enrolment import *  # noqa: F403
