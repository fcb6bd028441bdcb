//! One job message, from delivery to ack.
//!
//! - undecodable message → dead letter at once;
//! - ladder already complete (`.complete` marker from an earlier attempt) → publish its
//!   `video_transcoded` again (same id, so JetStream drops the duplicate) and ack;
//! - otherwise transcode into a fresh partial directory, sending `in_progress` every
//!   ack_wait/3 and `transcode_progress` at most every 2 s;
//! - success → commit the directory, publish `video_transcoded`, wait for its JetStream ack,
//!   then ack the job;
//! - failure → `transcode_failed` and nak with the configured backoff, or at the last attempt
//!   dead letter + `transcode_failed` (final) + ack;
//! - shutdown → kill ffmpeg, remove its directory, nak at once so another worker takes it.
//!
//! Deliveries count as attempts, including the ones a stopped or killed transcoder never
//! finished; a job delivered twice `max_attempts` times without any attempt finishing (the
//! transcoder dies on it every time) is dead-lettered without another try.

use std::{
    path::{Component, Path, PathBuf},
    time::Duration,
};

use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use lmsd_proto::v1::{event::Body, TranscodeProgress, VideoTranscoded};
use prost::Message as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    encode::{MASTER, POSTER, SPRITE, SPRITE_VTT},
    events::{self, JobRequest},
    output, probe,
    transcode::{self, Failure, Outcome, Request},
    worker::Worker,
};

/// Least time between two progress reports.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Where a job message stands, from its delivery metadata.
pub(crate) struct Delivery {
    pub subject: String,
    pub stream_sequence: u64,
    pub attempt: u32,
}

impl Worker {
    pub(crate) async fn handle(
        &self,
        slot: usize,
        message: jetstream::Message,
        ack_wait: Duration,
        shutdown: &CancellationToken,
    ) {
        let delivery = match message.info() {
            Ok(info) => Delivery {
                subject: message.subject.to_string(),
                stream_sequence: info.stream_sequence,
                attempt: u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX),
            },
            Err(err) => {
                tracing::error!(error = %err, "a job without JetStream metadata; ignored");
                return;
            }
        };
        let job = match events::decode_job(&message.payload) {
            Ok(job) => job,
            Err(reason) => {
                tracing::warn!(subject = %delivery.subject, %reason, "undecodable job");
                if self.dead_letter(&message, &delivery, &reason).await {
                    ack(&message).await;
                } else {
                    nak(&message, self.config.backoff_after(delivery.attempt)).await;
                }
                return;
            }
        };
        let verdict = self
            .run(slot, &message, &delivery, &job, ack_wait, shutdown)
            .await;
        self.status.set_slot(slot, "idle".to_owned());
        match verdict {
            Verdict::Done => ack(&message).await,
            Verdict::Again(delay) => nak(&message, delay).await,
            Verdict::Failed(reason) => self.fail(&message, &delivery, &job, &reason).await,
            Verdict::GiveUp(reason) => self.give_up(&message, &delivery, &job, &reason).await,
        }
    }

    async fn run(
        &self,
        slot: usize,
        message: &jetstream::Message,
        delivery: &Delivery,
        job: &JobRequest,
        ack_wait: Duration,
        shutdown: &CancellationToken,
    ) -> Verdict {
        let upload = &job.upload;
        let (source, output_dir) = match (
            resolve(&self.config.data_dir, &upload.source_path),
            resolve(&self.config.data_dir, &upload.output_dir),
        ) {
            (Ok(s), Ok(o)) => (s, o),
            (Err(e), _) | (_, Err(e)) => return Verdict::GiveUp(e),
        };
        match output::read_complete(&output_dir) {
            Ok(Some(stored)) => return self.republish(job, &stored).await,
            Ok(None) => {}
            Err(err) => {
                return Verdict::Failed(format!("cannot read {}: {err}", output_dir.display()))
            }
        }
        let max = self.config.max_attempts;
        if delivery.attempt > 2 * max {
            return Verdict::GiveUp(format!(
                "delivered {} times without an attempt finishing (the transcoder was stopped or died each time)",
                delivery.attempt
            ));
        }
        tracing::info!(video = %job.video_id, attempt = delivery.attempt, source = %upload.source_path, "transcoding");
        self.status
            .set_slot(slot, format!("transcoding {} 0%", job.video_id));
        let partial = match prepare(&output_dir).await {
            Ok(dir) => dir,
            Err(err) => {
                return Verdict::Failed(format!("cannot prepare {}: {err}", output_dir.display()))
            }
        };
        let cancel = shutdown.child_token();
        let result = self
            .transcode_watched(
                slot, message, delivery, job, &source, &partial, ack_wait, &cancel,
            )
            .await;
        match result {
            Ok(outcome) => {
                self.complete(job, delivery, &outcome, &partial, &output_dir)
                    .await
            }
            Err(failure) => {
                let _ = tokio::task::spawn_blocking(move || output::remove_tree(&partial)).await;
                match failure {
                    Failure::Cancelled => {
                        tracing::info!(video = %job.video_id, "stopped; handing the job back");
                        Verdict::Again(Duration::ZERO)
                    }
                    other => Verdict::Failed(other.to_string()),
                }
            }
        }
    }

    /// Runs the transcode while keeping the job alive (`in_progress`) and reporting progress.
    #[allow(clippy::too_many_arguments)]
    async fn transcode_watched(
        &self,
        slot: usize,
        message: &jetstream::Message,
        delivery: &Delivery,
        job: &JobRequest,
        source: &Path,
        partial: &Path,
        ack_wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<Outcome, Failure> {
        let probe = match &job.upload.probe {
            Some(probe) if probe.width > 0 && probe.height > 0 => probe.clone(),
            _ => probe::probe(&self.config.encode.ffprobe, source, cancel)
                .await
                .map_err(|e| Failure::Input(format!("cannot probe the source: {e}")))?,
        };
        let (progress, watched) = watch::channel(0u64);
        let request = Request {
            source,
            probe: &probe,
            dir: partial,
            language: Some(job.upload.language.as_str()),
        };
        let work = transcode::transcode(&self.config.encode, request, &progress, cancel);
        tokio::pin!(work);
        let mut keep_alive = tokio::time::interval((ack_wait / 3).max(Duration::from_millis(500)));
        let mut report = tokio::time::interval(PROGRESS_EVERY);
        let mut reported: Option<u64> = None;
        let mut count = 0u32;
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = keep_alive.tick() => {
                    if let Err(err) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %err, "cannot send in_progress");
                    }
                }
                _ = report.tick() => {
                    let done_us = *watched.borrow();
                    if reported == Some(done_us) {
                        continue;
                    }
                    reported = Some(done_us);
                    let percent = percent(done_us, probe.duration_ms);
                    self.status.set_slot(slot, format!("transcoding {} {percent}%", job.video_id));
                    let body = Body::TranscodeProgress(TranscodeProgress {
                        course_id: job.upload.course_id.clone(),
                        percent,
                        processed_ms: done_us / 1000,
                        attempt: delivery.attempt,
                    });
                    self.report_quickly(events::report(job, body, delivery.attempt, count)).await;
                    count += 1;
                }
            }
        }
    }

    /// Commits the ladder and publishes `video_transcoded`.
    async fn complete(
        &self,
        job: &JobRequest,
        delivery: &Delivery,
        outcome: &Outcome,
        partial: &Path,
        output_dir: &Path,
    ) -> Verdict {
        let upload = &job.upload;
        let media_root = Path::new(&upload.output_dir)
            .strip_prefix("media")
            .unwrap_or(Path::new(&upload.output_dir));
        let body = Body::VideoTranscoded(VideoTranscoded {
            course_id: upload.course_id.clone(),
            renditions: outcome.renditions.clone(),
            duration_ms: outcome.duration_ms,
            master_playlist: media_root.join(MASTER).to_string_lossy().into_owned(),
            audio: outcome.audio.clone(),
            poster: POSTER.to_owned(),
            sprite: SPRITE.to_owned(),
            sprite_vtt: SPRITE_VTT.to_owned(),
            output_dir: upload.output_dir.clone(),
            attempt: delivery.attempt,
            encode_ms: outcome.encode_ms,
        });
        let event = events::report(job, body, delivery.attempt, 0);
        let bytes = event.encode_to_vec();
        let (partial, output_dir) = (partial.to_path_buf(), output_dir.to_path_buf());
        let marker = bytes.clone();
        let committed = tokio::task::spawn_blocking(move || {
            let result = output::commit(&partial, &output_dir, Some(&marker));
            if result.is_err() {
                let _ = output::remove_tree(&partial);
            }
            result
        })
        .await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                return Verdict::Failed(format!("cannot move the ladder into place: {err}"))
            }
            Err(err) => return Verdict::Failed(err.to_string()),
        }
        tracing::info!(
            video = %job.video_id, encode_ms = outcome.encode_ms, renditions = outcome.renditions.len(),
            remuxed = outcome.renditions.iter().any(|r| r.remuxed), "transcoded"
        );
        self.publish_result(&event, Bytes::from(bytes)).await
    }

    /// A failed attempt: report it and retry later, or give up at the last attempt.
    async fn fail(
        &self,
        message: &jetstream::Message,
        delivery: &Delivery,
        job: &JobRequest,
        reason: &str,
    ) {
        if delivery.attempt >= self.config.max_attempts {
            return self.give_up(message, delivery, job, reason).await;
        }
        let delay = self.config.backoff_after(delivery.attempt);
        tracing::warn!(video = %job.video_id, attempt = delivery.attempt, retry_in = ?delay, %reason, "transcode failed");
        self.report_failure(job, delivery, reason, false).await;
        nak(message, delay).await;
    }

    /// The job goes to the dead-letter stream.
    async fn give_up(
        &self,
        message: &jetstream::Message,
        delivery: &Delivery,
        job: &JobRequest,
        reason: &str,
    ) {
        tracing::error!(video = %job.video_id, attempt = delivery.attempt, %reason, "transcode failed for good");
        if self.dead_letter(message, delivery, reason).await {
            self.report_failure(job, delivery, reason, true).await;
            ack(message).await;
        } else {
            nak(message, self.config.backoff_after(delivery.attempt)).await;
        }
    }
}

/// How a job ends.
pub(crate) enum Verdict {
    Done,
    /// Hand it back, to be delivered again after the delay (not a failure).
    Again(Duration),
    /// This attempt failed.
    Failed(String),
    /// No attempt can succeed.
    GiveUp(String),
}

/// Removes the partial directories of killed attempts and makes a new one.
async fn prepare(output_dir: &Path) -> std::io::Result<PathBuf> {
    let output_dir = output_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let removed = output::remove_partials(&output_dir)?;
        if removed > 0 {
            tracing::info!(removed, "removed partial directories of earlier attempts");
        }
        output::create_partial(&output_dir)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `relative` inside `data_dir`; it must not be absolute or climb out with `..`.
pub fn resolve(data_dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative);
    if relative.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!(
            "{relative:?} is not a relative path inside the data directory"
        ));
    }
    Ok(data_dir.join(path))
}

fn percent(done_us: u64, duration_ms: u64) -> u32 {
    if duration_ms == 0 {
        return 0;
    }
    (done_us / 10 / duration_ms).min(100) as u32
}

async fn ack(message: &jetstream::Message) {
    if let Err(err) = message.double_ack().await {
        tracing::warn!(error = %err, "cannot ack the job; it will be delivered again");
    }
}

async fn nak(message: &jetstream::Message, delay: Duration) {
    let delay = (!delay.is_zero()).then_some(delay);
    if let Err(err) = message.ack_with(AckKind::Nak(delay)).await {
        tracing::warn!(error = %err, "cannot nak the job; it comes back after ack_wait");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_data_directory() {
        let d = Path::new("/d");
        assert_eq!(
            resolve(d, "videos/v/source").unwrap(),
            Path::new("/d/videos/v/source")
        );
        for bad in ["", "/etc/passwd", "../x", "videos/../../x", "./videos"] {
            assert!(resolve(d, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percent_of_duration() {
        assert_eq!(percent(3_000_000, 6_000), 50);
        assert_eq!(percent(9_000_000, 6_000), 100);
        assert_eq!(percent(5, 0), 0);
    }
}
