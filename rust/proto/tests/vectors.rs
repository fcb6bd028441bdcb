//! The Rust contract types against the shared vectors in `proto/testdata/vectors.json`
//! (written by `proto/testdata/make_vectors.py`; tests/events/test_contracts.py checks the Python
//! code against the same bytes). Every case in the file must have its message built here under
//! the same name, and every message here must be in the file.

use lmsd_proto::v1::{self, event::Body};
use prost::Message;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../proto/testdata/vectors.json"
));

const COURSE: &str = "0b9c1a52-6a43-4d1e-9a57-3c5f2f1e8b01";
const LESSON: &str = "5d2e7f10-8c4b-4a3e-b1f2-9e6d0c7a4b22";

fn s(text: &str) -> String {
    text.to_owned()
}

/// The envelope most cases share (`ENVELOPE` in make_vectors.py) with `body`.
fn event(body: Body) -> v1::Event {
    v1::Event {
        id: s("9a7f3c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b"),
        campus_id: s("4f8e2d6c-0a1b-4c3d-9e5f-6a7b8c9d0e1f"),
        aggregate: s("enrolment"),
        aggregate_id: s("c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"),
        version: 3,
        occurred_at_us: 1_767_225_600_123_456,
        recorded_at_us: 1_767_225_600_234_567,
        actor_id: s("e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b"),
        body: Some(body),
    }
}

fn with_aggregate(aggregate: &str, body: Body) -> v1::Event {
    v1::Event {
        aggregate: s(aggregate),
        ..event(body)
    }
}

fn segment(start_ms: u32, end_ms: u32) -> v1::Segment {
    v1::Segment { start_ms, end_ms }
}

fn rendition(name: &str, width: u32, height: u32, bandwidth: u32) -> v1::Rendition {
    v1::Rendition {
        name: s(name),
        width,
        height,
        bandwidth,
        ..Default::default()
    }
}

/// A transcoder report: aggregate "transcode", unversioned.
fn report(body: Body) -> v1::Event {
    v1::Event {
        version: 0,
        ..with_aggregate("transcode", body)
    }
}

/// The message of the case `name`, built in code; `None` for a case unknown here.
fn expected(name: &str) -> Option<v1::Event> {
    let graded = |score, max_score| v1::QuizAttemptGraded {
        score,
        max_score,
        ..Default::default()
    };
    Some(match name {
        "empty_event" => v1::Event::default(),
        "envelope_only" => v1::Event {
            body: None,
            ..event(Body::LessonStarted(Default::default()))
        },
        "extreme_integers" => v1::Event {
            version: u64::MAX,
            occurred_at_us: i64::MIN,
            recorded_at_us: i64::MAX,
            ..Default::default()
        },
        "negative_time_no_actor" => v1::Event {
            id: s("x"),
            occurred_at_us: -1,
            recorded_at_us: 1,
            ..Default::default()
        },
        "empty_body" => v1::Event {
            id: s("x"),
            body: Some(Body::LessonStarted(v1::LessonStarted::default())),
            ..Default::default()
        },
        "lesson_started" => event(Body::LessonStarted(v1::LessonStarted {
            course_id: s(COURSE),
            lesson_id: s(LESSON),
        })),
        "lesson_completed" => event(Body::LessonCompleted(v1::LessonCompleted {
            course_id: s(COURSE),
            lesson_id: s(LESSON),
        })),
        "video_watched" => event(Body::VideoWatched(v1::VideoWatched {
            course_id: s(COURSE),
            lesson_id: s(LESSON),
            video_id: s("v-1"),
            segments: vec![segment(0, 15_000), segment(0, 0), segment(60_000, u32::MAX)],
        })),
        "quiz_attempt_submitted" => event(Body::QuizAttemptSubmitted(v1::QuizAttemptSubmitted {
            course_id: s(COURSE),
            lesson_id: String::new(),
            quiz_id: s("q-1"),
            attempt_id: s("a-1"),
            attempt_number: 1,
        })),
        "quiz_attempt_graded" => event(Body::QuizAttemptGraded(v1::QuizAttemptGraded {
            course_id: s(COURSE),
            lesson_id: s(LESSON),
            quiz_id: s("q-1"),
            attempt_id: s("a-1"),
            attempt_number: 2,
            score: 7.25,
            max_score: 10.0,
        })),
        "quiz_attempt_graded_doubles" => {
            event(Body::QuizAttemptGraded(graded(0.1 + 0.2, f64::MAX)))
        }
        "quiz_attempt_graded_special_doubles" => {
            event(Body::QuizAttemptGraded(graded(-5e-324, f64::INFINITY)))
        }
        "course_completed" => event(Body::CourseCompleted(v1::CourseCompleted {
            course_id: s(COURSE),
            lessons_completed: 12,
        })),
        "enrolment_created" => event(Body::EnrolmentCreated(v1::EnrolmentCreated {
            course_id: s(COURSE),
            user_id: s("u-1"),
            enrolled_by: String::new(),
        })),
        "enrolment_withdrawn" => event(Body::EnrolmentWithdrawn(v1::EnrolmentWithdrawn {
            course_id: s(COURSE),
            user_id: s("u-1"),
        })),
        "course_published" => with_aggregate(
            "course",
            Body::CoursePublished(v1::CoursePublished {
                code: s("MATH-101"),
                title: s("Analyse réelle — 実解析 🧮"),
                language: s("fr"),
                tags: ["mathématiques", "数学", "", "Ωmega"].map(s).to_vec(),
                course_version: 1,
            }),
        ),
        "course_updated" => with_aggregate(
            "course",
            Body::CourseUpdated(v1::CourseUpdated {
                code: s("MATH-101"),
                title: s("Análisis real"),
                language: s("es"),
                tags: Vec::new(),
                status: s("archived"),
                course_version: u32::MAX,
            }),
        ),
        "video_uploaded" => with_aggregate(
            "video",
            Body::VideoUploaded(v1::VideoUploaded {
                course_id: s(COURSE),
                filename: s("vorlesung-übung-01.mp4"),
                size_bytes: 9_007_199_254_740_993,
                language: s("de"),
                ..Default::default()
            }),
        ),
        "video_transcoded" => with_aggregate(
            "video",
            Body::VideoTranscoded(v1::VideoTranscoded {
                course_id: s(COURSE),
                renditions: vec![
                    rendition("360p", 640, 360, 800_000),
                    rendition("720p", 1280, 720, 2_800_000),
                    rendition("1080p", 1920, 1080, 5_000_000),
                ],
                duration_ms: 3_723_000,
                master_playlist: s("videos/v-1/master.m3u8"),
                ..Default::default()
            }),
        ),
        "video_uploaded_probed" => with_aggregate(
            "video",
            Body::VideoUploaded(v1::VideoUploaded {
                course_id: s(COURSE),
                filename: s("lecture.mov"),
                size_bytes: 734_003_200,
                language: s("pt-BR"),
                source_path: s("videos/v-1/source"),
                output_dir: s("media/videos/v-1/hls"),
                probe: Some(v1::VideoProbe {
                    width: 1080,
                    height: 1920,
                    rotation: 90,
                    duration_ms: 3_723_040,
                    video_codec: s("h264"),
                    audio_codec: String::new(),
                    pix_fmt: s("yuv420p"),
                    bit_rate: 1_577_000,
                    frame_rate: 29.97,
                    has_audio: false,
                    container: s("mov,mp4,m4a,3gp,3g2,mj2"),
                    video_bit_rate: 1_500_000,
                }),
            }),
        ),
        "video_transcoded_full" => report(Body::VideoTranscoded(v1::VideoTranscoded {
            course_id: s(COURSE),
            renditions: vec![
                v1::Rendition {
                    average_bandwidth: 450_000,
                    codecs: s("avc1.64001e"),
                    playlist: s("240p/index.m3u8"),
                    ..rendition("240p", 426, 240, 540_000)
                },
                v1::Rendition {
                    codecs: s("avc1.640028"),
                    playlist: s("1080p/index.m3u8"),
                    remuxed: true,
                    ..rendition("1080p", 1920, 1080, 5_600_000)
                },
            ],
            audio: Some(v1::Rendition {
                codecs: s("mp4a.40.2"),
                playlist: s("audio/index.m3u8"),
                ..rendition("audio", 0, 0, 136_000)
            }),
            duration_ms: 60_000,
            master_playlist: s("videos/v-1/hls/master.m3u8"),
            poster: s("poster.jpg"),
            sprite: s("sprite.jpg"),
            sprite_vtt: s("sprite.vtt"),
            output_dir: s("media/videos/v-1/hls"),
            attempt: 2,
            encode_ms: 41_234,
        })),
        "transcode_progress" => report(Body::TranscodeProgress(v1::TranscodeProgress {
            course_id: s(COURSE),
            percent: 42,
            processed_ms: 25_200,
            attempt: 1,
        })),
        "transcode_failed" => report(Body::TranscodeFailed(v1::TranscodeFailed {
            course_id: s(COURSE),
            reason: s("moov atom not found"),
            attempt: 4,
            r#final: true,
        })),
        "transcript_published" => with_aggregate(
            "video",
            Body::TranscriptPublished(v1::TranscriptPublished {
                course_id: s(COURSE),
                language: s("en"),
                text: s("Welcome to the lecture.\nToday: vectors."),
                cue_count: 2,
                revision: 3,
                source: s("edited"),
                model: String::new(),
            }),
        ),
        "transcription_requested" => with_aggregate(
            "video",
            Body::TranscriptionRequested(v1::TranscriptionRequested {
                course_id: s(COURSE),
                language: s("fr"),
            }),
        ),
        _ => return None,
    })
}

/// Every case name `expected` knows (kept in step with it by `every_known_case_is_in_the_file`).
const KNOWN: &[&str] = &[
    "empty_event",
    "envelope_only",
    "extreme_integers",
    "negative_time_no_actor",
    "empty_body",
    "lesson_started",
    "lesson_completed",
    "video_watched",
    "quiz_attempt_submitted",
    "quiz_attempt_graded",
    "quiz_attempt_graded_doubles",
    "quiz_attempt_graded_special_doubles",
    "course_completed",
    "enrolment_created",
    "enrolment_withdrawn",
    "course_published",
    "course_updated",
    "video_uploaded",
    "video_transcoded",
    "video_uploaded_probed",
    "video_transcoded_full",
    "transcode_progress",
    "transcode_failed",
    "transcript_published",
    "transcription_requested",
];

/// Body variants. `Body::name` matches them exhaustively, so a new variant fails to compile
/// there until it is named; `every_body_variant_is_covered` then asks for a vector of it.
const VARIANT_COUNT: usize = 16;

fn cases() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors.json is JSON");
    assert_eq!(doc["message"], "lmsd.contracts.v1.Event");
    let cases = doc["cases"].as_array().expect("cases is a list");
    cases
        .iter()
        .map(|case| {
            let name = case["name"].as_str().expect("case name");
            let hex = case["hex"].as_str().expect("case hex");
            (name.to_owned(), hex.to_owned())
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[test]
fn every_case_encodes_and_decodes_like_the_vector() {
    let mut failures = Vec::new();
    for (name, hex) in cases() {
        let Some(msg) = expected(&name) else {
            failures.push(format!(
                "{name}: unknown to the Rust test, add it to expected()"
            ));
            continue;
        };
        let encoded = to_hex(&msg.encode_to_vec());
        if encoded != hex {
            failures.push(format!("{name}: encodes to {encoded}, vector has {hex}"));
        }
        match v1::Event::decode(from_hex(&hex).as_slice()) {
            Ok(decoded) if decoded == msg => {}
            Ok(decoded) => {
                failures.push(format!("{name}: decodes to {decoded:?}, expected {msg:?}"))
            }
            Err(err) => failures.push(format!("{name}: does not decode: {err}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_known_case_is_in_the_file() {
    let names: Vec<String> = cases().into_iter().map(|(name, _)| name).collect();
    for name in KNOWN {
        assert!(
            expected(name).is_some(),
            "{name} in KNOWN but not in expected()"
        );
        assert!(
            names.iter().any(|n| n == name),
            "{name} is not in vectors.json (run make_vectors.py)"
        );
    }
    assert_eq!(names.len(), KNOWN.len(), "vectors.json and KNOWN differ");
}

#[test]
fn every_body_variant_is_covered() {
    let mut seen: Vec<&str> = KNOWN
        .iter()
        .filter_map(|n| expected(n)?.body)
        .map(|b| b.name())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len(),
        VARIANT_COUNT,
        "body variants with a vector: {seen:?}"
    );
}
