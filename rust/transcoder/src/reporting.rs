//! What the worker publishes about a job: the result (and the stored result again), failure
//! reports, progress, dead letters. Results and failures wait for JetStream's ack (a few
//! tries); progress is best effort.

use std::time::Duration;

use async_nats::{
    jetstream::{self, message::PublishMessage as Publish},
    HeaderMap,
};
use bytes::Bytes;
use lmsd_proto::v1::{event::Body, Event, TranscodeFailed};
use prost::Message as _;

use crate::{
    events::{self, JobRequest},
    job::{Delivery, Verdict, PROGRESS_EVERY},
    output,
    worker::Worker,
};

/// Publish attempts before giving up on a report.
const PUBLISH_TRIES: u32 = 3;
/// Delay of the redelivery when the result could not be published (the ladder is complete;
/// the next delivery only publishes).
const REPUBLISH_DELAY: Duration = Duration::from_secs(2);

impl Worker {
    /// Publishes the stored `video_transcoded` of a ladder finished by an earlier attempt.
    pub(crate) async fn republish(&self, job: &JobRequest, stored: &[u8]) -> Verdict {
        match Event::decode(stored) {
            Ok(event) => {
                tracing::info!(video = %job.video_id, "already transcoded; publishing the result again");
                self.publish_result(&event, Bytes::copy_from_slice(stored))
                    .await
            }
            Err(err) => Verdict::Failed(format!("unreadable {} marker: {err}", output::COMPLETE)),
        }
    }

    pub(crate) async fn publish_result(&self, event: &Event, bytes: Bytes) -> Verdict {
        let subject = events::report_subject(&self.config.events_prefix, event);
        match self
            .publish(&subject, HeaderMap::new(), Some(&event.id), bytes)
            .await
        {
            Ok(()) => Verdict::Done,
            Err(err) => {
                tracing::warn!(error = %err, "cannot publish video_transcoded; the job comes back to publish it");
                Verdict::Again(REPUBLISH_DELAY)
            }
        }
    }

    pub(crate) async fn report_failure(
        &self,
        job: &JobRequest,
        delivery: &Delivery,
        reason: &str,
        last: bool,
    ) {
        let body = Body::TranscodeFailed(TranscodeFailed {
            course_id: job.upload.course_id.clone(),
            reason: reason.to_owned(),
            attempt: delivery.attempt,
            r#final: last,
        });
        let event = events::report(job, body, delivery.attempt, 0);
        let subject = events::report_subject(&self.config.events_prefix, &event);
        if let Err(err) = self
            .publish(
                &subject,
                HeaderMap::new(),
                Some(&event.id),
                Bytes::from(event.encode_to_vec()),
            )
            .await
        {
            tracing::warn!(error = %err, "cannot publish transcode_failed");
        }
    }

    /// Publishes the job to the dead-letter stream; false when that failed.
    pub(crate) async fn dead_letter(
        &self,
        message: &jetstream::Message,
        delivery: &Delivery,
        reason: &str,
    ) -> bool {
        let (subject, headers) = lmsd_service::dlq::dead_letter(
            &self.config.dlq_prefix,
            &self.config.consumer,
            &delivery.subject,
            delivery.stream_sequence,
            i64::from(delivery.attempt),
            reason,
        );
        match self
            .publish(&subject, headers, None, message.payload.clone())
            .await
        {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, "cannot dead-letter the job; it comes back later");
                false
            }
        }
    }

    /// Publishes and waits for JetStream's ack, trying a few times.
    pub(crate) async fn publish(
        &self,
        subject: &str,
        headers: HeaderMap,
        id: Option<&str>,
        payload: Bytes,
    ) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=PUBLISH_TRIES {
            let mut publish = Publish::build()
                .payload(payload.clone())
                .headers(headers.clone());
            if let Some(id) = id {
                publish = publish.message_id(id);
            }
            match self.js.send_publish(subject.to_owned(), publish).await {
                Ok(ack) => match ack.await {
                    Ok(_) => return Ok(()),
                    Err(err) => last = err.to_string(),
                },
                Err(err) => last = err.to_string(),
            }
            if attempt < PUBLISH_TRIES {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Err(format!("publish to {subject}: {last}"))
    }

    /// Progress is best effort: sent without waiting for JetStream's ack.
    pub(crate) async fn report_quickly(&self, event: Event) {
        let subject = events::report_subject(&self.config.events_prefix, &event);
        let publish = Publish::build()
            .payload(Bytes::from(event.encode_to_vec()))
            .message_id(&event.id);
        let sent =
            tokio::time::timeout(PROGRESS_EVERY, self.js.send_publish(subject, publish)).await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::debug!("progress report not sent");
        }
    }
}
