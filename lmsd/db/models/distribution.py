"""The Citus plan (docs/citus.md), read by migrations (when the citus extension is present, through
lmsd.db.citus) and by tests/db/test_citus_plan.py, which holds the metadata to it.

``campuses`` and the consumers' bookkeeping are reference tables; every other table belongs to one
campus, is distributed by ``campus_id`` and colocated with the others, so every primary key,
unique constraint and foreign key between them starts with ``campus_id``. A new table gets its
place here.
"""

from __future__ import annotations

CITUS_REFERENCE = ("campuses", "event_consumers", "projection_snapshots")
CITUS_DISTRIBUTED = {
    name: "campus_id"
    for name in (
        "users",
        "courses",
        "course_instructors",
        "modules",
        "lessons",
        "enrolments",
        "quizzes",
        "questions",
        "attempts",
        "refresh_tokens",
        "password_resets",
        "sso_providers",
        "outbox",
        "event_aggregates",
        "consumer_applied",
        "progress",
        "lesson_progress",
        "grades",
        "xapi_statements",
        "uploads",
        "videos",
        "video_transcripts",
        "client_events",
    )
}
