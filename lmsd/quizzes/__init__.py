"""Quizzes: questions, attempts with automatic grading, attempt limits, the gradebook."""
