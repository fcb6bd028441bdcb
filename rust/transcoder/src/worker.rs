//! `serve`: connect to NATS, bind to the durable pull consumer (waiting quietly until
//! `lmsd install` has created it), and run `jobs` slots that each fetch and handle one job at
//! a time until shutdown. The handling of one job is in [`crate::job`].

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{config::ServeConfig, heartbeat};

/// Pause before binding again when the stream or consumer is missing or NATS is away.
pub const RETRY: Duration = Duration::from_secs(3);
/// How long one pull request waits for a job.
const FETCH_EXPIRES: Duration = Duration::from_secs(5);

/// What every slot shares.
#[derive(Debug)]
pub struct Worker {
    pub config: ServeConfig,
    pub js: jetstream::Context,
    pub status: heartbeat::Status,
}

/// Runs until `shutdown`; a job in progress is stopped, cleaned up and handed back (nak).
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = lmsd_service::connect_nats("lmsd-transcoder", &config.nats_url, config.nats_auth_file.as_deref()).await?;
    let status = heartbeat::Status::new(config.jobs as usize);
    let beat_stop = CancellationToken::new();
    let beat = config
        .heartbeat_file
        .clone()
        .map(|path| tokio::spawn(heartbeat::run(path, status.clone(), beat_stop.clone())));
    tracing::info!(
        nats = %config.nats_url, stream = %config.stream, consumer = %config.consumer,
        jobs = config.jobs, ladder = %config.encode.ladder, data_dir = %config.data_dir.display(),
        "lmsd-transcoder serving"
    );
    let worker = Arc::new(Worker {
        js: jetstream::new(client.clone()),
        config,
        status,
    });
    let mut slots = JoinSet::new();
    for slot in 0..worker.config.jobs as usize {
        slots.spawn(Arc::clone(&worker).slot(slot, shutdown.clone()));
    }
    while let Some(done) = slots.join_next().await {
        if let Err(err) = done {
            tracing::error!(error = %err, "job slot crashed");
        }
    }
    let _ = client.flush().await;
    beat_stop.cancel();
    if let Some(beat) = beat {
        let _ = beat.await;
    }
    tracing::info!("lmsd-transcoder stopped");
    Ok(())
}

impl Worker {
    /// One job slot: fetch one job, handle it, repeat.
    async fn slot(self: Arc<Self>, slot: usize, shutdown: CancellationToken) {
        let mut bound: Option<(PullConsumer, Duration)> = None;
        let mut waiting_said = false;
        while !shutdown.is_cancelled() {
            let (consumer, ack_wait) = match &bound {
                Some(b) => b.clone(),
                None => match self.bind().await {
                    Ok(b) => {
                        tracing::info!(slot, ack_wait = ?b.1, "bound to {}/{}", self.config.stream, self.config.consumer);
                        self.status.set_connection("");
                        waiting_said = false;
                        bound = Some(b.clone());
                        b
                    }
                    Err(err) => {
                        // normal before `lmsd install` created the stream: say it once
                        if waiting_said {
                            tracing::debug!(error = %err, "still waiting for the consumer");
                        } else if slot == 0 {
                            tracing::info!(error = %err, "waiting for {}/{} (retrying every {:?})",
                                self.config.stream, self.config.consumer, RETRY);
                        }
                        waiting_said = true;
                        let connected = matches!(
                            self.js.client().connection_state(),
                            async_nats::connection::State::Connected
                        );
                        self.status.set_connection(&if connected {
                            format!(
                                "waiting for {}/{}",
                                self.config.stream, self.config.consumer
                            )
                        } else {
                            format!("connecting to NATS at {}", self.config.nats_url)
                        });
                        pause(RETRY, &shutdown).await;
                        continue;
                    }
                },
            };
            let fetch = consumer
                .fetch()
                .max_messages(1)
                .expires(FETCH_EXPIRES)
                .messages();
            let mut batch = tokio::select! {
                batch = fetch => match batch {
                    Ok(batch) => batch,
                    Err(err) => {
                        tracing::debug!(error = %err, "fetch failed; binding again");
                        bound = None;
                        pause(Duration::from_secs(1), &shutdown).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let next = tokio::select! {
                next = batch.next() => next,
                () = shutdown.cancelled() => break,
            };
            match next {
                None => {}
                Some(Ok(message)) => self.handle(slot, message, ack_wait, &shutdown).await,
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "pull failed; binding again");
                    bound = None;
                    pause(Duration::from_secs(1), &shutdown).await;
                }
            }
        }
    }

    /// The consumer and its ack wait.
    async fn bind(&self) -> Result<(PullConsumer, Duration), async_nats::Error> {
        let stream = self.js.get_stream(&self.config.stream).await?;
        let consumer: PullConsumer = stream.get_consumer(&self.config.consumer).await?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        Ok((consumer, ack_wait))
    }
}

/// Sleeps `duration` unless `shutdown` comes first.
pub async fn pause(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}
