"""tests.quizzes.test_attempts_used on Citus (see __init__.py)."""

from tests.quizzes.test_attempts_used import *  # noqa: F403
