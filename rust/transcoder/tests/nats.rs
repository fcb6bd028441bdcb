//! `lmsd-transcoder serve` against a real nats-server with JetStream: a job becomes a ladder
//! and a `video_transcoded` event exactly once; a stopped or killed transcoder leaves no ffmpeg
//! and no partial directory. Failures: dead_letters.rs.

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::bus::{create_streams, ffmpeg_processes, NatsServer, Transcoder};
use common::jobs::*;
use lmsd_proto::v1::{event::Body, Event};

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
