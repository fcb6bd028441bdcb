"""tests.quizzes.test_service_quizzes on Citus (see __init__.py)."""

from tests.quizzes.test_service_quizzes import *  # noqa: F403
