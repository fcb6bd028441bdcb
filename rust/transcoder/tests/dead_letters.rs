//! `lmsd-transcoder serve` against a real nats-server with JetStream: failures are reported,
//! retried and dead-lettered with their reason, and the job queue empties.

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use common::bus::{create_streams, NatsServer, Transcoder};
use common::jobs::*;
use lmsd_proto::v1::{event::Body, Event};
use prost::Message;

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
