"""Courses, their modules and lessons, and who teaches them."""
