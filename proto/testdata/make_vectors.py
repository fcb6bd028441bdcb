"""(Re)write proto/testdata/vectors.json, the shared contract test vectors, from CASES below.

Each case is an `Event` in protobuf's canonical JSON mapping (field names as in the .proto);
the expected bytes come from the Python generated code (run scripts/gen_contracts.py first).
Both tests/events/test_contracts.py and rust/proto/tests/vectors.rs check every case in the
file, both ways (encode → bytes, bytes → decode). Adding a case: add it here, run
`.venv/bin/python proto/testdata/make_vectors.py`, and add the same message under the same
name in rust/proto/tests/vectors.rs (the Rust test fails on cases it does not know).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "vectors.json"
MESSAGE = "lmsd.contracts.v1.Event"

COURSE = "0b9c1a52-6a43-4d1e-9a57-3c5f2f1e8b01"
LESSON = "5d2e7f10-8c4b-4a3e-b1f2-9e6d0c7a4b22"
ENVELOPE: dict[str, Any] = {
    "id": "9a7f3c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b",
    "campus_id": "4f8e2d6c-0a1b-4c3d-9e5f-6a7b8c9d0e1f",
    "aggregate": "enrolment",
    "aggregate_id": "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f",
    "version": "3",
    "occurred_at_us": "1767225600123456",
    "recorded_at_us": "1767225600234567",
    "actor_id": "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b",
}


def event(**body: Any) -> dict[str, Any]:
    return {**ENVELOPE, **body}


CASES: dict[str, dict[str, Any]] = {
    "empty_event": {},
    "envelope_only": dict(ENVELOPE),
    "extreme_integers": {
        "version": "18446744073709551615",
        "occurred_at_us": "-9223372036854775808",
        "recorded_at_us": "9223372036854775807",
    },
    "negative_time_no_actor": {"id": "x", "occurred_at_us": "-1", "recorded_at_us": "1"},
    "empty_body": {"id": "x", "lesson_started": {}},
    "lesson_started": event(lesson_started={"course_id": COURSE, "lesson_id": LESSON}),
    "lesson_completed": event(lesson_completed={"course_id": COURSE, "lesson_id": LESSON}),
    "video_watched": event(
        video_watched={
            "course_id": COURSE,
            "lesson_id": LESSON,
            "video_id": "v-1",
            "segments": [
                {"start_ms": 0, "end_ms": 15000},
                {},
                {"start_ms": 60000, "end_ms": 4294967295},
            ],
        }
    ),
    "quiz_attempt_submitted": event(
        quiz_attempt_submitted={
            "course_id": COURSE,
            "quiz_id": "q-1",
            "attempt_id": "a-1",
            "attempt_number": 1,
        }
    ),
    "quiz_attempt_graded": event(
        quiz_attempt_graded={
            "course_id": COURSE,
            "lesson_id": LESSON,
            "quiz_id": "q-1",
            "attempt_id": "a-1",
            "attempt_number": 2,
            "score": 7.25,
            "max_score": 10.0,
        }
    ),
    "quiz_attempt_graded_doubles": event(
        quiz_attempt_graded={"score": 0.30000000000000004, "max_score": 1.7976931348623157e308}
    ),
    "quiz_attempt_graded_special_doubles": event(
        quiz_attempt_graded={"score": -5e-324, "max_score": "Infinity"}
    ),
    "course_completed": event(course_completed={"course_id": COURSE, "lessons_completed": 12}),
    "enrolment_created": event(enrolment_created={"course_id": COURSE, "user_id": "u-1"}),
    "enrolment_withdrawn": event(enrolment_withdrawn={"course_id": COURSE, "user_id": "u-1"}),
    "course_published": event(
        aggregate="course",
        course_published={
            "code": "MATH-101",
            "title": "Analyse réelle — 実解析 🧮",
            "language": "fr",
            "tags": ["mathématiques", "数学", "", "Ωmega"],
            "course_version": 1,
        },
    ),
    "course_updated": event(
        aggregate="course",
        course_updated={
            "code": "MATH-101",
            "title": "Análisis real",
            "language": "es",
            "status": "archived",
            "course_version": 4294967295,
        },
    ),
    "video_uploaded": event(
        aggregate="video",
        video_uploaded={
            "course_id": COURSE,
            "filename": "vorlesung-übung-01.mp4",
            "size_bytes": "9007199254740993",
            "language": "de",
        },
    ),
    "video_transcoded": event(
        aggregate="video",
        video_transcoded={
            "course_id": COURSE,
            "renditions": [
                {"name": "360p", "width": 640, "height": 360, "bandwidth": 800000},
                {"name": "720p", "width": 1280, "height": 720, "bandwidth": 2800000},
                {"name": "1080p", "width": 1920, "height": 1080, "bandwidth": 5000000},
            ],
            "duration_ms": 3723000,
            "master_playlist": "videos/v-1/master.m3u8",
        },
    ),
    "video_uploaded_probed": event(
        aggregate="video",
        video_uploaded={
            "course_id": COURSE,
            "filename": "lecture.mov",
            "size_bytes": "734003200",
            "language": "pt-BR",
            "source_path": "videos/v-1/source",
            "output_dir": "media/videos/v-1/hls",
            "probe": {
                "width": 1080, "height": 1920, "rotation": 90, "duration_ms": "3723040",
                "video_codec": "h264", "audio_codec": "", "pix_fmt": "yuv420p", "bit_rate": "1577000",
                "frame_rate": 29.97, "has_audio": False, "container": "mov,mp4,m4a,3gp,3g2,mj2",
                "video_bit_rate": "1500000",
            },
        },
    ),
    "video_transcoded_full": event(
        aggregate="transcode",
        version="0",
        video_transcoded={
            "course_id": COURSE,
            "renditions": [
                {"name": "240p", "width": 426, "height": 240, "bandwidth": 540000, "average_bandwidth": 450000,
                 "codecs": "avc1.64001e", "playlist": "240p/index.m3u8"},
                {"name": "1080p", "width": 1920, "height": 1080, "bandwidth": 5600000, "codecs": "avc1.640028",
                 "playlist": "1080p/index.m3u8", "remuxed": True},
            ],
            "audio": {"name": "audio", "bandwidth": 136000, "codecs": "mp4a.40.2", "playlist": "audio/index.m3u8"},
            "duration_ms": 60000,
            "master_playlist": "videos/v-1/hls/master.m3u8",
            "poster": "poster.jpg",
            "sprite": "sprite.jpg",
            "sprite_vtt": "sprite.vtt",
            "output_dir": "media/videos/v-1/hls",
            "attempt": 2,
            "encode_ms": 41234,
        },
    ),
    "transcode_progress": event(
        aggregate="transcode", version="0",
        transcode_progress={"course_id": COURSE, "percent": 42, "processed_ms": "25200", "attempt": 1},
    ),
    "transcode_failed": event(
        aggregate="transcode", version="0",
        transcode_failed={"course_id": COURSE, "reason": "moov atom not found", "attempt": 4, "final": True},
    ),
    "transcript_published": event(
        aggregate="video",
        transcript_published={
            "course_id": COURSE, "language": "en", "text": "Welcome to the lecture.\nToday: vectors.",
            "cue_count": 2, "revision": 3, "source": "edited", "model": "",
        },
    ),
    "transcription_requested": event(
        aggregate="video", transcription_requested={"course_id": COURSE, "language": "fr"},
    ),
}


def render() -> str:
    """The text vectors.json must have: each case normalized through the Python code."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from google.protobuf import json_format

    from lmsd.contracts.v1 import envelope_pb2

    cases = []
    for name, body in CASES.items():
        msg = json_format.ParseDict(body, envelope_pb2.Event())
        cases.append(
            {
                "name": name,
                "json": json_format.MessageToDict(msg, preserving_proto_field_name=True),
                "hex": msg.SerializeToString(deterministic=True).hex(),
            }
        )
    doc = {
        "comment": "Generated by proto/testdata/make_vectors.py; do not edit by hand.",
        "message": MESSAGE,
        "cases": cases,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {len(CASES)} cases to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
