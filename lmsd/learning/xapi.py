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
class Facts:
    """What the xapi_statements table keeps to filter on; the statement is built when read.
    Ids are the event's UUID strings; times are microseconds since the epoch, rounded to the
    millisecond as the statement carries them."""

    campus_id: str
    id: str
    user_id: str
    course_id: str
    verb: str
    activity: str
    timestamp_us: int
    stored_us: int


def verb_iri(body: str) -> str:
    return ADL + VERBS[body][0]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object(event: Event, base_url: str) -> tuple[str, Any, str, str, str, str]:
    """(body, message, course IRI, activity kind, activity IRI, learner) of an event."""
    body = event.WhichOneof("body") or ""
    if body not in VERBS:
        raise KeyError(f"no xAPI mapping for {body}")
    msg: Any = getattr(event, body)
    course_iri = f"{base_url.rstrip('/')}/courses/{msg.course_id}"
    user_id = msg.user_id if body in ("enrolment_created", "enrolment_withdrawn") else event.actor_id
    if body in ("lesson_started", "lesson_completed"):
        return body, msg, course_iri, "lesson", f"{course_iri}/lessons/{msg.lesson_id}", user_id
    if body == "video_watched":
        return body, msg, course_iri, "video", f"{course_iri}/lessons/{msg.lesson_id}", user_id
    if body in ("quiz_attempt_submitted", "quiz_attempt_graded"):
        return body, msg, course_iri, "assessment", f"{course_iri}/quizzes/{msg.quiz_id}", user_id
    return body, msg, course_iri, "course", course_iri, user_id


def _ms(micros: int) -> int:
    # xAPI carries milliseconds: the filterable columns hold exactly what the statement says
    return micros - micros % 1000


def facts(event: Event, base_url: str) -> Facts:
    body, msg, _, _, iri, user_id = _object(event, base_url)
    return Facts(
        campus_id=event.campus_id,
        id=event.id,
        user_id=user_id,
        course_id=msg.course_id,
        verb=ADL + VERBS[body][0],
        activity=iri,
        timestamp_us=_ms(event.occurred_at_us),
        stored_us=_ms(event.recorded_at_us),
    )


def statement(event: Event, base_url: str) -> dict[str, Any]:
    body, msg, course_iri, kind, iri, user_id = _object(event, base_url)
    base = base_url.rstrip("/")
    result: dict[str, Any] | None = None
    if body in ("lesson_completed", "course_completed"):
        result = {"completion": True}
    elif body == "video_watched":
        ranges = [f"{s.start_ms / 1000:.3f}[.]{s.end_ms / 1000:.3f}" for s in msg.segments]
        watched_ms = sum(max(0, s.end_ms - s.start_ms) for s in msg.segments)
        result = {
            "duration": f"PT{watched_ms / 1000:.3f}S",
            "extensions": {"https://w3id.org/xapi/video/extensions/played-segments": "[,]".join(ranges)},
        }
    elif body == "quiz_attempt_graded":
        scaled = msg.score / msg.max_score if msg.max_score > 0 else 0.0
        result = {"score": {"raw": msg.score, "min": 0, "max": msg.max_score, "scaled": round(scaled, 4)}}
    verb, display = VERBS[body]
    data: dict[str, Any] = {
        "id": event.id,
        "version": "1.0.3",
        "actor": {"objectType": "Agent", "account": {"homePage": base + "/", "name": str(uuid.UUID(user_id))}},
        "verb": {"id": ADL + verb, "display": {"en-US": display}},
        "object": {"objectType": "Activity", "id": iri, "definition": {"type": ACTIVITY_TYPES[kind]}},
        "context": {"registration": event.aggregate_id, "platform": "lmsd"},
        "timestamp": _iso(from_micros(_ms(event.occurred_at_us))),
        "stored": _iso(from_micros(_ms(event.recorded_at_us))),
        "authority": {"objectType": "Agent", "account": {"homePage": base + "/", "name": "lmsd"}},
    }
    if iri != course_iri:
        data["context"]["contextActivities"] = {"parent": [{"objectType": "Activity", "id": course_iri}]}
    if result is not None:
        data["result"] = result
    return data
