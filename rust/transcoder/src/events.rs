//! What the transcoder says on the bus: `transcode` state reports in the Event envelope on
//! `<prefix>.<campus>.transcode.<video>.<event>`, with deterministic ids (so a re-published
//! report is dropped by JetStream's duplicate window and recognised by consumers).

use std::time::{SystemTime, UNIX_EPOCH};

use lmsd_proto::v1::{event::Body, Event, VideoUploaded};
use prost::Message;
use uuid::Uuid;

/// Aggregate of the reports.
pub const AGGREGATE: &str = "transcode";

/// The job a message asked for.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub campus_id: String,
    pub video_id: String,
    pub upload: VideoUploaded,
}

/// Decodes a job message: an Event envelope whose body is `video_uploaded`.
pub fn decode_job(data: &[u8]) -> Result<JobRequest, String> {
    let event = Event::decode(data).map_err(|e| format!("undecodable Event envelope: {e}"))?;
    let upload = match event.body {
        Some(Body::VideoUploaded(upload)) => upload,
        Some(other) => return Err(format!("not a video_uploaded event: {}", other.name())),
        None => return Err("Event envelope without a body".to_owned()),
    };
    for (field, value) in [
        ("campus_id", &event.campus_id),
        ("aggregate_id", &event.aggregate_id),
    ] {
        if !is_token(value) {
            return Err(format!("envelope {field} {value:?} is not a subject token"));
        }
    }
    Ok(JobRequest {
        campus_id: event.campus_id,
        video_id: event.aggregate_id,
        upload,
    })
}

/// A non-empty NATS subject token without wildcards or separators.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '.' | '*' | '>'))
}

/// `UUIDv5(URL, "lmsd:transcode:{video}:{event}:{attempt}:{n}")`: the envelope id and
/// Nats-Msg-Id of a report (n counts progress reports; 0 for the others).
pub fn report_id(video_id: &str, event: &str, attempt: u32, n: u32) -> String {
    let name = format!("lmsd:transcode:{video_id}:{event}:{attempt}:{n}");
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

/// The envelope of a report about `job`.
pub fn report(job: &JobRequest, body: Body, attempt: u32, n: u32) -> Event {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Event {
        id: report_id(&job.video_id, body.name(), attempt, n),
        campus_id: job.campus_id.clone(),
        aggregate: AGGREGATE.to_owned(),
        aggregate_id: job.video_id.clone(),
        version: 0,
        occurred_at_us: now,
        recorded_at_us: now,
        actor_id: String::new(),
        body: Some(body),
    }
}

/// Subject of a report envelope.
pub fn report_subject(prefix: &str, event: &Event) -> String {
    let name = event.body.as_ref().map_or("other", Body::name);
    format!(
        "{prefix}.{}.{AGGREGATE}.{}.{name}",
        event.campus_id, event.aggregate_id
    )
}

#[cfg(test)]
mod tests {
    use lmsd_proto::v1::{TranscodeFailed, TranscodeProgress, VideoProbe};

    use super::*;

    const CAMPUS: &str = "4f8e2d6c-0a1b-4c3d-9e5f-6a7b8c9d0e1f";
    const VIDEO: &str = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f";

    fn upload_event() -> Event {
        Event {
            id: "e".into(),
            campus_id: CAMPUS.into(),
            aggregate: "video".into(),
            aggregate_id: VIDEO.into(),
            version: 1,
            body: Some(Body::VideoUploaded(VideoUploaded {
                source_path: "videos/x/source".into(),
                output_dir: "media/videos/x/hls".into(),
                probe: Some(VideoProbe::default()),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_jobs() {
        let job = decode_job(&upload_event().encode_to_vec()).unwrap();
        assert_eq!(
            (job.campus_id.as_str(), job.video_id.as_str()),
            (CAMPUS, VIDEO)
        );
        assert_eq!(job.upload.output_dir, "media/videos/x/hls");

        assert!(decode_job(b"\xff\xff\xff")
            .unwrap_err()
            .starts_with("undecodable"));
        let mut other = upload_event();
        other.body = Some(Body::TranscodeFailed(TranscodeFailed::default()));
        assert_eq!(
            decode_job(&other.encode_to_vec()).unwrap_err(),
            "not a video_uploaded event: transcode_failed"
        );
        let mut bad = upload_event();
        bad.aggregate_id = "a.b".into();
        assert!(decode_job(&bad.encode_to_vec()).is_err());
    }

    #[test]
    fn reports_have_deterministic_ids() {
        // the same name hashed by Python: uuid.uuid5(uuid.NAMESPACE_URL, "lmsd:transcode:v:video_transcoded:2:0")
        assert_eq!(
            report_id("v", "video_transcoded", 2, 0),
            "03e21d3a-e3d2-516e-90af-12a292351e10"
        );
        let job = decode_job(&upload_event().encode_to_vec()).unwrap();
        let event = report(
            &job,
            Body::TranscodeProgress(TranscodeProgress {
                percent: 5,
                ..Default::default()
            }),
            1,
            3,
        );
        assert_eq!(event.id, report_id(VIDEO, "transcode_progress", 1, 3));
        assert_eq!((event.aggregate.as_str(), event.version), ("transcode", 0));
        assert_eq!(
            report_subject("lmsd", &event),
            format!("lmsd.{CAMPUS}.transcode.{VIDEO}.transcode_progress")
        );
    }
}
