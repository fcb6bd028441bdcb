"""Tests of the HTTP edge: the unit of work, the error table, problem+json."""
