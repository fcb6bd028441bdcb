//! The transcoder's job queue as the NATS tests drive it: a campus's uploads, jobs published as
//! `video_uploaded` events, the reports and dead letters read back, the heartbeat.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use async_nats::{jetstream, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use lmsd_proto::v1::{event::Body, Event, VideoUploaded};
use prost::Message;

pub const CAMPUS: &str = "0d6c54f1-8f1e-4c0b-9a59-1f0c9a6b0c11";
pub const COURSE: &str = "5d2e7f10-8c4b-4a3e-b1f2-9e6d0c7a4b22";

/// A data directory with the uploads of the test.
pub struct Campus {
    pub dir: tempfile::TempDir,
}

impl Campus {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn output(&self, video: &str) -> PathBuf {
        self.path().join(format!("media/videos/{video}/hls"))
    }

    /// Entries next to the video's output directory (the output and any partial directory).
    pub fn beside_output(&self, video: &str) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(self.path().join(format!("media/videos/{video}")))
                .map(|dir| {
                    dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
        names.sort();
        names
    }

    /// Puts `source` (None: nothing) in place and returns the job's body.
    pub async fn upload(&self, video: &str, source: Option<&Path>) -> VideoUploaded {
        let source_path = format!("videos/{video}/source");
        let probe = match source {
            Some(file) => {
                let target = self.path().join(&source_path);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(file, &target).unwrap();
                lmsd_transcoder::probe::probe(&super::ffprobe(), &target, &Default::default())
                    .await
                    .ok()
            }
            None => None,
        };
        VideoUploaded {
            course_id: COURSE.to_owned(),
            filename: "lecture.mp4".to_owned(),
            language: "en".to_owned(),
            source_path,
            // an unprobeable file still gets a plausible probe, as a lying upload would
            probe: Some(probe.unwrap_or(lmsd_proto::v1::VideoProbe {
                width: 640,
                height: 360,
                duration_ms: 5000,
                video_codec: "h264".into(),
                pix_fmt: "yuv420p".into(),
                frame_rate: 25.0,
                container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                ..Default::default()
            })),
            output_dir: format!("media/videos/{video}/hls"),
            ..Default::default()
        }
    }
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn job_subject(video: &str) -> String {
    format!("lmsd.{CAMPUS}.video.{video}.video_uploaded")
}

/// Publishes a video_uploaded event to LMSD_EVENTS (LMSD_JOBS sources it).
pub async fn publish_job(js: &jetstream::Context, video: &str, upload: VideoUploaded) {
    let event = Event {
        id: uuid(),
        campus_id: CAMPUS.to_owned(),
        aggregate: "video".to_owned(),
        aggregate_id: video.to_owned(),
        version: 1,
        body: Some(Body::VideoUploaded(upload)),
        ..Default::default()
    };
    publish_raw(
        js,
        &job_subject(video),
        &event.id,
        event.encode_to_vec().into(),
    )
    .await;
}

pub async fn publish_raw(js: &jetstream::Context, subject: &str, id: &str, payload: Bytes) {
    let publish = jetstream::message::PublishMessage::build()
        .payload(payload)
        .message_id(id);
    js.send_publish(subject.to_owned(), publish)
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Every report the transcoder published, as received.
pub struct Reports {
    pub subscription: Subscriber,
    pub seen: Vec<Event>,
    /// The transcoder's log, shown when a report does not come.
    pub log: PathBuf,
}

impl Reports {
    pub async fn new(client: &async_nats::Client, log: &Path) -> Self {
        let subscription = client.subscribe("lmsd.*.transcode.>").await.unwrap();
        Self {
            subscription,
            seen: Vec::new(),
            log: log.to_path_buf(),
        }
    }

    /// The first report (ever received) that `wanted` accepts, waiting up to `timeout`.
    pub async fn find(&mut self, timeout: Duration, wanted: impl Fn(&Event) -> bool) -> Event {
        self.find_all(timeout, 1, wanted).await.remove(0)
    }

    /// The first `count` reports that `wanted` accepts.
    pub async fn find_all(
        &mut self,
        timeout: Duration,
        count: usize,
        wanted: impl Fn(&Event) -> bool,
    ) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found: Vec<Event> = self
                .seen
                .iter()
                .filter(|e| wanted(e))
                .take(count)
                .cloned()
                .collect();
            if found.len() == count {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.subscription.next()).await {
                Ok(Some(message)) => self
                    .seen
                    .push(Event::decode(message.payload).expect("a report envelope")),
                _ => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    panic!("the report did not come in time; transcoder log:\n{log}");
                }
            }
        }
    }
}

pub fn is(video: &str, name: &str) -> impl Fn(&Event) -> bool {
    let video = video.to_owned();
    let name = name.to_owned();
    move |event| {
        event.aggregate_id == video
            && event
                .body
                .as_ref()
                .is_some_and(|b| b.name() == name)
    }
}

/// Stored messages of LMSD_EVENTS on `subject`.
pub async fn stored(js: &jetstream::Context, subject: &str) -> u64 {
    let stream = js.get_stream("LMSD_EVENTS").await.unwrap();
    let info = stream.info_with_subjects(subject).await.unwrap();
    let counts: Vec<(String, usize)> = info
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    counts.iter().map(|(_, n)| *n as u64).sum()
}

/// Waits until the heartbeat's detail satisfies `wanted`.
pub async fn heartbeat(campus: &Campus, wanted: impl Fn(&str) -> bool) -> String {
    let path = campus.path().join("transcoder.heartbeat");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let beat: serde_json::Value = serde_json::from_str(&text).unwrap();
            let detail = beat["detail"].as_str().unwrap().to_owned();
            if wanted(&detail) {
                return detail;
            }
        }
        assert!(
            Instant::now() < deadline,
            "heartbeat never satisfied the test"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}


/// Waits (10 s at most) until the transcode consumer has no job pending or unacknowledged: a job
/// is acknowledged (or ended) just after its result or dead letter is published, so the server
/// may see that a moment after the test sees the message.
pub async fn wait_jobs_done(js: &jetstream::Context) {
    let jobs = js.get_stream("LMSD_JOBS").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = jobs
            .get_consumer::<jetstream::consumer::pull::Config>("transcode")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        if (info.num_pending, info.num_ack_pending) == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "jobs left: {} pending, {} unacknowledged",
            info.num_pending,
            info.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
