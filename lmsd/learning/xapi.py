"""Learning events as xAPI 1.0.3 statements (verbs from the ADL vocabulary).

Actor: the learner's campus account (``account.homePage`` = the portal, ``account.name`` = the
user id). Object: the activity IRI of the lesson, quiz or course under the portal's URL. The
enrolment id is the statement's ``context.registration``; the event id is the statement id, so
a statement is the same however often it is built.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lmsd.events.envelope import Event, from_micros

ADL = "http://adlnet.gov/expapi/verbs/"
ACTIVITY_TYPES = {
    "course": "http://adlnet.gov/expapi/activities/course",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "assessment": "http://adlnet.gov/expapi/activities/assessment",
    "video": "https://w3id.org/xapi/video/activity-type/video",
}
VERBS = {  # event body -> (ADL verb, display)
    "enrolment_created": ("registered", "registered"),
    "enrolment_withdrawn": ("exited", "exited"),
    "lesson_started": ("attempted", "attempted"),
    "lesson_completed": ("completed", "completed"),
    "video_watched": ("experienced", "experienced"),
    "quiz_attempt_submitted": ("attempted", "attempted"),
    "quiz_attempt_graded": ("scored", "scored"),
    "course_completed": ("completed", "completed"),
}


@dataclass(frozen=True)
class Row:
    campus_id: uuid.UUID
    id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    verb: str
    activity: str
    timestamp: datetime
    stored: datetime
    statement: dict[str, Any]


def verb_iri(body: str) -> str:
    return ADL + VERBS[body][0]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def statement(event: Event, base_url: str) -> Row:
    body = event.WhichOneof("body")
    if body not in VERBS:
        raise KeyError(f"no xAPI mapping for {body}")
    msg: Any = getattr(event, body)
    base = base_url.rstrip("/")
    course_iri = f"{base}/courses/{msg.course_id}"
    user_id = uuid.UUID(msg.user_id) if body in ("enrolment_created", "enrolment_withdrawn") else uuid.UUID(event.actor_id)
    kind, iri = "course", course_iri
    result: dict[str, Any] | None = None
    if body in ("lesson_started", "lesson_completed"):
        kind, iri = "lesson", f"{course_iri}/lessons/{msg.lesson_id}"
        if body == "lesson_completed":
            result = {"completion": True}
    elif body == "video_watched":
        kind, iri = "video", f"{course_iri}/lessons/{msg.lesson_id}"
        ranges = [f"{s.start_ms / 1000:.3f}[.]{s.end_ms / 1000:.3f}" for s in msg.segments]
        watched_ms = sum(max(0, s.end_ms - s.start_ms) for s in msg.segments)
        result = {
            "duration": f"PT{watched_ms / 1000:.3f}S",
            "extensions": {"https://w3id.org/xapi/video/extensions/played-segments": "[,]".join(ranges)},
        }
    elif body in ("quiz_attempt_submitted", "quiz_attempt_graded"):
        kind, iri = "assessment", f"{course_iri}/quizzes/{msg.quiz_id}"
        if body == "quiz_attempt_graded":
            scaled = msg.score / msg.max_score if msg.max_score > 0 else 0.0
            result = {"score": {"raw": msg.score, "min": 0, "max": msg.max_score, "scaled": round(scaled, 4)}}
    elif body == "course_completed":
        result = {"completion": True}
    # xAPI carries milliseconds: the filterable columns hold exactly what the statement says
    timestamp = from_micros(event.occurred_at_us - event.occurred_at_us % 1000)
    stored = from_micros(event.recorded_at_us - event.recorded_at_us % 1000)
    verb, display = VERBS[body]
    data: dict[str, Any] = {
        "id": event.id,
        "version": "1.0.3",
        "actor": {"objectType": "Agent", "account": {"homePage": base + "/", "name": str(user_id)}},
        "verb": {"id": ADL + verb, "display": {"en-US": display}},
        "object": {"objectType": "Activity", "id": iri, "definition": {"type": ACTIVITY_TYPES[kind]}},
        "context": {
            "registration": event.aggregate_id,
            "platform": "lmsd",
            "contextActivities": {"parent": [{"objectType": "Activity", "id": course_iri}]} if iri != course_iri else {},
        },
        "timestamp": _iso(timestamp),
        "stored": _iso(stored),
        "authority": {"objectType": "Agent", "account": {"homePage": base + "/", "name": "lmsd"}},
    }
    if not data["context"]["contextActivities"]:
        del data["context"]["contextActivities"]
    if result is not None:
        data["result"] = result
    return Row(
        campus_id=uuid.UUID(event.campus_id),
        id=uuid.UUID(event.id),
        user_id=user_id,
        course_id=uuid.UUID(msg.course_id),
        verb=ADL + verb,
        activity=iri,
        timestamp=timestamp,
        stored=stored,
        statement=data,
    )
