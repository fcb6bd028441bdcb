"""tests.quizzes.test_course_quizzes on Citus (see __init__.py)."""

from tests.quizzes.test_course_quizzes import *  # noqa: F403
