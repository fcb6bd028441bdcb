//! `lmsd-transcoder serve` against a real nats-server with JetStream: a job becomes a ladder
//! and a `video_transcoded` event exactly once; failures are reported, retried and
//! dead-lettered; a stopped or killed transcoder leaves no ffmpeg and no partial directory.

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use async_nats::{jetstream, Subscriber};
use bytes::Bytes;
use common::bus::{create_streams, ffmpeg_processes, NatsServer, Transcoder};
use futures_util::StreamExt;
use lmsd_proto::v1::{event::Body, Event, VideoUploaded};
use prost::Message;

const CAMPUS: &str = "0d6c54f1-8f1e-4c0b-9a59-1f0c9a6b0c11";
const COURSE: &str = "5d2e7f10-8c4b-4a3e-b1f2-9e6d0c7a4b22";

/// A data directory with the uploads of the test.
struct Campus {
    dir: tempfile::TempDir,
}

impl Campus {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn output(&self, video: &str) -> PathBuf {
        self.path().join(format!("media/videos/{video}/hls"))
    }

    /// Entries next to the video's output directory (the output and any partial directory).
    fn beside_output(&self, video: &str) -> Vec<String> {
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
    async fn upload(&self, video: &str, source: Option<&Path>) -> VideoUploaded {
        let source_path = format!("videos/{video}/source");
        let probe = match source {
            Some(file) => {
                let target = self.path().join(&source_path);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(file, &target).unwrap();
                lmsd_transcoder::probe::probe(&common::ffprobe(), &target, &Default::default())
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

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn job_subject(video: &str) -> String {
    format!("lmsd.{CAMPUS}.video.{video}.video_uploaded")
}

/// Publishes a video_uploaded event to LMSD_EVENTS (LMSD_JOBS sources it).
async fn publish_job(js: &jetstream::Context, video: &str, upload: VideoUploaded) {
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

async fn publish_raw(js: &jetstream::Context, subject: &str, id: &str, payload: Bytes) {
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
struct Reports {
    subscription: Subscriber,
    seen: Vec<Event>,
    /// The transcoder's log, shown when a report does not come.
    log: PathBuf,
}

impl Reports {
    async fn new(client: &async_nats::Client, log: &Path) -> Self {
        let subscription = client.subscribe("lmsd.*.transcode.>").await.unwrap();
        Self {
            subscription,
            seen: Vec::new(),
            log: log.to_path_buf(),
        }
    }

    /// The first report (ever received) that `wanted` accepts, waiting up to `timeout`.
    async fn find(&mut self, timeout: Duration, wanted: impl Fn(&Event) -> bool) -> Event {
        self.find_all(timeout, 1, wanted).await.remove(0)
    }

    /// The first `count` reports that `wanted` accepts.
    async fn find_all(
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

fn is(video: &str, name: &str) -> impl Fn(&Event) -> bool {
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
async fn stored(js: &jetstream::Context, subject: &str) -> u64 {
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
async fn heartbeat(campus: &Campus, wanted: impl Fn(&str) -> bool) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_video_is_transcoded_once() {
    let nats = NatsServer::start();
    let client = nats.connect().await;
    let js = jetstream::new(client.clone());
    let campus = Campus::new();
    let log = campus.path().join("transcoder.log");
    // started before `lmsd install` made the streams: waits quietly
    let mut transcoder = Transcoder::start(&nats, campus.path(), &log, &[]);
    heartbeat(&campus, |d| d == "waiting for LMSD_JOBS/transcode").await;
    create_streams(&js, Duration::from_secs(30)).await;
    heartbeat(&campus, |d| d == "idle").await;

    let mut reports = Reports::new(&client, &log).await;
    let video = uuid();
    let upload = campus
        .upload(&video, Some(&common::clip(common::Clip::new(640, 360, 6))))
        .await;
    publish_job(&js, &video, upload.clone()).await;

    let progress = reports
        .find(Duration::from_secs(30), is(&video, "transcode_progress"))
        .await;
    let Some(Body::TranscodeProgress(p)) = &progress.body else {
        unreachable!()
    };
    assert_eq!((p.attempt, p.course_id.as_str()), (1, COURSE));
    let done = reports
        .find(Duration::from_secs(60), is(&video, "video_transcoded"))
        .await;
    assert_eq!(
        (
            done.campus_id.as_str(),
            done.aggregate.as_str(),
            done.version
        ),
        (CAMPUS, "transcode", 0)
    );
    assert_eq!(
        done.id,
        lmsd_transcoder::events::report_id(&video, "video_transcoded", 1, 0)
    );
    let Some(Body::VideoTranscoded(t)) = &done.body else {
        unreachable!()
    };
    let names: Vec<&str> = t.renditions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["180p", "360p"], "{}", transcoder.log_text());
    assert_eq!(t.master_playlist, format!("videos/{video}/hls/master.m3u8"));
    assert_eq!(t.output_dir, upload.output_dir);
    assert_eq!((t.attempt, t.duration_ms / 100), (1, 60));
    assert_eq!(t.audio.as_ref().unwrap().playlist, "audio/index.m3u8");
    assert_eq!(
        (t.poster.as_str(), t.sprite.as_str(), t.sprite_vtt.as_str()),
        ("poster.jpg", "sprite.jpg", "sprite.vtt")
    );
    assert!(t.encode_ms > 0);
    let out = campus.output(&video);
    for file in [
        "master.m3u8",
        ".complete",
        "360p/index.m3u8",
        "audio/init.mp4",
        "poster.jpg",
        "sprite.vtt",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    assert_eq!(campus.beside_output(&video), ["hls"]);
    common::assert_aligned(&out, &["180p", "360p"]);
    assert!(std::fs::read_to_string(out.join("master.m3u8"))
        .unwrap()
        .contains("LANGUAGE=\"en\""));

    // the same job again (e.g. redelivered after the ack was lost): the result is published
    // again with the same id, JetStream keeps one copy, nothing is transcoded
    publish_job(&js, &video, upload).await;
    let both = reports
        .find_all(Duration::from_secs(30), 2, is(&video, "video_transcoded"))
        .await;
    assert_eq!(both[1], done);
    let subject = format!("lmsd.{CAMPUS}.transcode.{video}.video_transcoded");
    assert_eq!(stored(&js, &subject).await, 1);
    wait_jobs_done(&js).await;
    let log_text = transcoder.log_text();
    assert_eq!(log_text.matches(": transcoding ").count(), 1, "{log_text}");
    assert_eq!(
        log_text.matches("already transcoded").count(),
        1,
        "{log_text}"
    );

    assert!(
        transcoder.terminate().success(),
        "{}",
        transcoder.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_then_dead_lettered() {
    let nats = NatsServer::start();
    let client = nats.connect().await;
    let js = jetstream::new(client.clone());
    create_streams(&js, Duration::from_secs(30)).await;
    let campus = Campus::new();
    let log = campus.path().join("transcoder.log");
    let mut reports = Reports::new(&client, &log).await;
    let mut transcoder = Transcoder::start(
        &nats,
        campus.path(),
        &log,
        &[("MAX_ATTEMPTS", "2"), ("BACKOFF", "1")],
    );

    // not an Event at all: dead-lettered at once
    let junk_video = uuid();
    publish_raw(
        &js,
        &job_subject(&junk_video),
        "junk",
        Bytes::from_static(b"\xff\x00junk"),
    )
    .await;
    // a file ffmpeg cannot read, and no file at all
    let corrupt = uuid();
    let garbage = campus.path().join("garbage.mp4");
    std::fs::write(&garbage, vec![0x42u8; 50_000]).unwrap();
    let upload = campus.upload(&corrupt, Some(&garbage)).await;
    publish_job(&js, &corrupt, upload).await;
    let missing = uuid();
    let upload = campus.upload(&missing, None).await;
    publish_job(&js, &missing, upload).await;

    for (video, expected) in [
        (&corrupt, "Invalid data found when processing input"),
        (&missing, "source file not found"),
    ] {
        for attempt in 1..=2 {
            let failed = reports
                .find(Duration::from_secs(30), |e| {
                    is(video, "transcode_failed")(e)
                        && matches!(&e.body, Some(Body::TranscodeFailed(f)) if f.attempt == attempt)
                })
                .await;
            let Some(Body::TranscodeFailed(f)) = failed.body else {
                unreachable!()
            };
            assert!(
                f.reason.contains(expected),
                "{}: {}",
                f.reason,
                transcoder.log_text()
            );
            assert_eq!(f.r#final, attempt == 2);
        }
        assert_eq!(
            campus.beside_output(video),
            Vec::<String>::new(),
            "nothing left of the attempts"
        );
    }

    // three dead letters, with the original data and the reason
    let dlq = js.get_stream("LMSD_DLQ").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dlq.clone().info().await.unwrap().state.messages < 3 {
        assert!(
            Instant::now() < deadline,
            "dead letters missing: {}",
            transcoder.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (video, reason, deliveries) in [
        (&junk_video, "undecodable Event envelope", "1"),
        (&corrupt, "Invalid data found", "2"),
        (&missing, "source file not found", "2"),
    ] {
        let subject = format!("lmsd-dlq.transcode.{}", job_subject(video));
        let letter = dlq.get_last_raw_message_by_subject(&subject).await.unwrap();
        let headers = letter.headers;
        assert!(
            headers
                .get("Lmsd-Dlq-Reason")
                .unwrap()
                .as_str()
                .contains(reason),
            "{headers:?}"
        );
        assert_eq!(
            headers.get("Lmsd-Dlq-Consumer").unwrap().as_str(),
            "transcode"
        );
        assert_eq!(
            headers.get("Lmsd-Dlq-Subject").unwrap().as_str(),
            job_subject(video)
        );
        assert_eq!(
            headers.get("Lmsd-Dlq-Deliveries").unwrap().as_str(),
            deliveries
        );
        if video != &junk_video {
            assert!(Event::decode(letter.payload).is_ok(), "the original data");
        }
    }
    // the work queue empties (each job is ended right after its dead letter is published)
    wait_jobs_done(&js).await;
    assert!(transcoder.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_and_killed_transcoders_leave_nothing_behind() {
    let nats = NatsServer::start();
    let client = nats.connect().await;
    let js = jetstream::new(client.clone());
    create_streams(&js, Duration::from_secs(3)).await;
    let campus = Campus::new();
    let log = campus.path().join("transcoder.log");
    // ffmpeg reading its input at twice real time, so the job lasts long enough to interrupt
    let slow = campus.path().join("slow-ffmpeg");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\nexec {:?} -readrate 2 \"$@\"\n",
            common::ffmpeg().display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let slow = slow.display().to_string();
    let env = [("FFMPEG", slow.as_str())];
    let mut reports = Reports::new(&client, &log).await;
    let video = uuid();
    let upload = campus
        .upload(&video, Some(&common::clip(common::Clip::new(426, 240, 10))))
        .await;
    publish_job(&js, &video, upload).await;
    let data = campus.path().display().to_string();

    let underway = |attempt: u32| {
        let video = video.clone();
        move |e: &Event| {
            e.aggregate_id == video
                && matches!(&e.body, Some(Body::TranscodeProgress(p)) if p.attempt == attempt && p.processed_ms > 0)
        }
    };

    // 1. SIGTERM mid-job: ffmpeg killed, its directory removed, the job handed back, exit 0
    let mut first = Transcoder::start(&nats, campus.path(), &log, &env);
    reports.find(Duration::from_secs(30), underway(1)).await;
    assert_eq!(ffmpeg_processes(&data).len(), 1);
    assert!(first.terminate().success(), "{}", first.log_text());
    assert_eq!(ffmpeg_processes(&data), Vec::<u32>::new());
    assert_eq!(campus.beside_output(&video), Vec::<String>::new());

    // 2. SIGKILL mid-job (handed back at once by the nak above): ffmpeg dies with it
    let mut second = Transcoder::start(&nats, campus.path(), &log, &env);
    reports.find(Duration::from_secs(30), underway(2)).await;
    let ffmpeg = ffmpeg_processes(&data);
    assert_eq!(ffmpeg.len(), 1);
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ffmpeg_processes(&data).is_empty() {
        assert!(
            Instant::now() < deadline,
            "ffmpeg {ffmpeg:?} outlived its transcoder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        campus.beside_output(&video).len(),
        1,
        "the killed attempt's partial directory"
    );

    // 3. a new transcoder gets the job after ack_wait, cleans up and completes it once
    let mut third = Transcoder::start(&nats, campus.path(), &log, &env);
    let done = reports
        .find(Duration::from_secs(60), is(&video, "video_transcoded"))
        .await;
    let Some(Body::VideoTranscoded(t)) = &done.body else {
        unreachable!()
    };
    assert_eq!(t.attempt, 3, "{}", third.log_text());
    assert_eq!(campus.beside_output(&video), ["hls"]);
    assert!(campus.output(&video).join(".complete").is_file());
    let subject = format!("lmsd.{CAMPUS}.transcode.{video}.video_transcoded");
    assert_eq!(stored(&js, &subject).await, 1);
    assert!(third.terminate().success());
    assert_eq!(ffmpeg_processes(&data), Vec::<u32>::new());
}

/// Waits (10 s at most) until the transcode consumer has no job pending or unacknowledged: a job
/// is acknowledged (or ended) just after its result or dead letter is published, so the server
/// may see that a moment after the test sees the message.
async fn wait_jobs_done(js: &jetstream::Context) {
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
