"""tests.courses.test_api_courses on Citus (see __init__.py)."""

from tests.courses.test_api_courses import *  # noqa: F403
