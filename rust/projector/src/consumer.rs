//! `serve`: connect to NATS and PostgreSQL, bind to the durable pull consumer (waiting quietly
//! until `lmsd install` has created it and migrated the database), and run `concurrency` lanes.
//! Each lane has its own message stream and database connection: it takes what has arrived
//! (up to `batch` events), applies it in one transaction ([`crate::store::apply_batch`]) and
//! acknowledges it; meanwhile the other lanes fetch and apply theirs.
//!
//! - A message that is not an lmsd event goes to the dead-letter stream at once.
//! - When a batch cannot be applied, its events are applied one by one; one that keeps failing
//!   goes to the dead-letter stream at its `max_attempts`-th delivery, the others are applied.
//! - When the database is away (or slow), the lane holds its batch, saying "in progress" to
//!   JetStream every few seconds, and applies it once it can connect again; when NATS is away,
//!   the client reconnects and the lane binds again. An event is acknowledged only after its
//!   transaction committed, so nothing is lost, and the claim in that transaction makes a
//!   redelivery change nothing.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::Context;
use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio_postgres::{error::SqlState, Client, NoTls};
use tokio_util::sync::CancellationToken;

use crate::{
    config::ServeConfig,
    event::decode,
    store::{self, Delivered, Failure, Statements},
};

/// Pause before binding or connecting again.
const RETRY: Duration = Duration::from_secs(1);
/// How often a batch held (the database away or slow) is said to be in progress; well within
/// the consumer's ack wait (10 s).
const KEEP_ALIVE: Duration = Duration::from_secs(3);

/// The campus database as the application role (`lmsd.db.dsn.app_dsn`).
#[derive(Deserialize)]
struct PgCredentials {
    dsn: String,
}

/// What the lanes share.
pub struct Projector {
    config: ServeConfig,
    js: jetstream::Context,
    pg: tokio_postgres::Config,
    applied: AtomicU64,
    waiting: Mutex<String>,
}

/// Runs until `shutdown`; a batch being applied is finished (or rolled back) first.
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pg: PgCredentials =
        lmsd_service::read_secret_json(&config.pg_auth_file, "PostgreSQL auth file", "{\"dsn\": \"postgresql://…\"}")?;
    let mut pg_config: tokio_postgres::Config = pg.dsn.parse().context("the PostgreSQL auth file's dsn")?;
    pg_config.application_name("lmsd-projector").connect_timeout(Duration::from_secs(5));
    let client = lmsd_service::connect_nats("lmsd-projector", &config.nats_url, config.nats_auth_file.as_deref()).await?;
    tracing::info!(
        nats = %config.nats_url, stream = %config.stream, consumer = %config.consumer,
        batch = config.batch, concurrency = config.concurrency, "lmsd-projector serving"
    );
    let projector = Arc::new(Projector {
        js: jetstream::new(client.clone()),
        pg: pg_config,
        applied: AtomicU64::new(0),
        waiting: Mutex::new("starting".to_owned()),
        config,
    });
    let beat_stop = CancellationToken::new();
    let beat = projector.config.heartbeat_file.clone().map(|path| {
        let p = Arc::clone(&projector);
        tokio::spawn(lmsd_service::heartbeat::run(
            path,
            env!("CARGO_PKG_VERSION"),
            move || p.detail(),
            beat_stop.clone(),
        ))
    });
    let mut lanes = JoinSet::new();
    for lane in 0..projector.config.concurrency as usize {
        lanes.spawn(Arc::clone(&projector).lane(lane, shutdown.clone()));
    }
    while let Some(done) = lanes.join_next().await {
        if let Err(err) = done {
            tracing::error!(error = %err, "lane crashed");
        }
    }
    let _ = client.flush().await;
    beat_stop.cancel();
    if let Some(beat) = beat {
        let _ = beat.await;
    }
    tracing::info!("lmsd-projector stopped");
    Ok(())
}

/// Whether a database error means "away, try again" rather than "this batch cannot be applied".
pub fn unavailable(err: &tokio_postgres::Error) -> bool {
    let Some(db) = err.as_db_error() else {
        return true; // no answer from the server: connection refused, closed, timed out
    };
    let code = db.code();
    let class = &code.code()[..2];
    // connection exceptions, shutdown, resources; a schema or database not there yet (before
    // `lmsd install` or `lmsd upgrade` has migrated it)
    matches!(class, "08" | "53" | "57")
        || *code == SqlState::UNDEFINED_TABLE
        || *code == SqlState::INVALID_CATALOG_NAME
        || lost_node(code, db.message())
}

/// A Citus worker lost in the middle of a statement or of its commit: the coordinator reports it
/// under XX000 (internal error), not class 08 (lmsd/db/availability.py has the same rule). A
/// commit that may or may not have happened is safe to try again: the claims skip what did.
fn lost_node(code: &SqlState, message: &str) -> bool {
    *code == SqlState::INTERNAL_ERROR
        && (message.contains("server closed the connection unexpectedly")
            || message.contains("could not commit transaction for shard"))
}

type Db = (Client, Statements);

impl Projector {
    fn detail(&self) -> String {
        let waiting = self.waiting.lock().map(|w| w.clone()).unwrap_or_default();
        if waiting.is_empty() {
            format!("consuming {}: applied {}", self.config.consumer, self.applied.load(Ordering::Relaxed))
        } else {
            waiting
        }
    }

    fn set_waiting(&self, text: &str) {
        if let Ok(mut waiting) = self.waiting.lock() {
            if *waiting != text {
                text.clone_into(&mut waiting);
            }
        }
    }

    async fn connect(&self) -> Result<Db, tokio_postgres::Error> {
        let (client, connection) = self.pg.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %store::describe(&err), "database connection ended");
            }
        });
        let statements = Statements::prepare(&client).await?;
        Ok((client, statements))
    }

    async fn bind(&self) -> Result<PullConsumer, async_nats::Error> {
        let stream = self.js.get_stream(&self.config.stream).await?;
        stream.get_consumer(&self.config.consumer).await
    }

    /// One lane: bind, then take and apply batches until shutdown.
    async fn lane(self: Arc<Self>, lane: usize, shutdown: CancellationToken) {
        let mut db: Option<Db> = None;
        let batch = self.config.batch as usize;
        while !shutdown.is_cancelled() {
            let consumer = match self.bind().await {
                Ok(c) => c,
                Err(err) => {
                    if lane == 0 {
                        tracing::debug!(error = %err, "waiting for {}/{}", self.config.stream, self.config.consumer);
                    }
                    self.set_waiting(&format!("waiting for {}/{}", self.config.stream, self.config.consumer));
                    pause(RETRY, &shutdown).await;
                    continue;
                }
            };
            // connected before the first batch arrives (and the heartbeat says so)
            if self.database(&mut db, &shutdown).await.is_none() {
                continue;
            }
            tracing::info!(lane, "bound to {}/{}", self.config.stream, self.config.consumer);
            let stream = consumer
                .stream()
                .max_messages_per_batch(batch)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await;
            let mut messages = match stream {
                Ok(m) => m,
                Err(err) => {
                    tracing::debug!(error = %err, "cannot pull; binding again");
                    pause(RETRY, &shutdown).await;
                    continue;
                }
            };
            loop {
                let first = tokio::select! {
                    next = messages.next() => next,
                    () = shutdown.cancelled() => return,
                };
                let mut taken = match first {
                    Some(Ok(message)) => vec![message],
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "pull interrupted; binding again");
                        break;
                    }
                    None => break,
                };
                // what has already arrived joins the batch; nothing waits for more
                while taken.len() < batch {
                    match messages.next().now_or_never() {
                        Some(Some(Ok(message))) => taken.push(message),
                        _ => break,
                    }
                }
                self.handle(&mut db, taken, &shutdown).await;
            }
            pause(RETRY, &shutdown).await;
        }
    }

    /// Decodes, applies and acknowledges one batch.
    async fn handle(&self, db: &mut Option<Db>, messages: Vec<jetstream::Message>, shutdown: &CancellationToken) {
        // the decoded events and their messages, side by side
        let mut batch: Vec<Delivered> = Vec::with_capacity(messages.len());
        let mut good: Vec<jetstream::Message> = Vec::with_capacity(messages.len());
        for message in messages {
            let (stream_seq, deliveries) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                Err(err) => {
                    tracing::warn!(error = %err, subject = %message.subject, "message without JetStream metadata; skipped");
                    continue;
                }
            };
            match decode(&message.payload) {
                Ok(event) => {
                    batch.push(Delivered { event, stream_seq, data: message.payload.clone() });
                    good.push(message);
                }
                Err(err) => {
                    if self.dead_letter(&message, stream_seq, deliveries, &err.to_string()).await {
                        ack(&message, AckKind::Ack).await;
                    }
                }
            }
        }
        if good.is_empty() {
            return;
        }
        match self.apply_held(db, &batch, &good, shutdown).await {
            None => {} // stopping: the batch comes back to whoever consumes next
            Some(Ok(applied)) => {
                self.applied.fetch_add(applied as u64, Ordering::Relaxed);
                for message in &good {
                    ack(message, AckKind::Ack).await;
                }
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, events = good.len(), "batch failed; applying one by one");
                self.one_by_one(db, &batch, &good, shutdown).await;
            }
        }
    }

    /// Applies each event on its own: the ones that can be applied are; the others come back
    /// with a growing delay and go to the dead-letter stream at their last attempt.
    async fn one_by_one(
        &self,
        db: &mut Option<Db>,
        batch: &[Delivered],
        messages: &[jetstream::Message],
        shutdown: &CancellationToken,
    ) {
        for (delivered, message) in batch.iter().zip(messages) {
            match self.apply_held(db, std::slice::from_ref(delivered), std::slice::from_ref(message), shutdown).await {
                None => return,
                Some(Ok(applied)) => {
                    self.applied.fetch_add(applied as u64, Ordering::Relaxed);
                    ack(message, AckKind::Ack).await;
                }
                Some(Err(err)) => {
                    let deliveries = message.info().map(|i| i.delivered).unwrap_or(1);
                    if deliveries >= i64::from(self.config.max_attempts) {
                        let reason = err.to_string();
                        if self.dead_letter(message, delivered.stream_seq, deliveries, &reason).await {
                            ack(message, AckKind::Ack).await;
                        }
                    } else {
                        let exponent = u32::try_from(deliveries.clamp(0, 5)).unwrap_or(5);
                        let delay = Duration::from_secs(2u64.pow(exponent).min(30));
                        ack(message, AckKind::Nak(Some(delay))).await;
                    }
                }
            }
        }
    }

    /// Applies `batch`, holding on to it while the database is away or slow: its messages get
    /// "in progress" acknowledgements every few seconds, which restart JetStream's ack wait
    /// without counting a delivery. (Handing them back instead would spend the consumer's
    /// deliveries on an outage: past `max_deliver`, JetStream stops delivering a message.)
    /// `None` when stopping; otherwise the outcome, never "the database is away".
    async fn apply_held(
        &self,
        db: &mut Option<Db>,
        batch: &[Delivered],
        messages: &[jetstream::Message],
        shutdown: &CancellationToken,
    ) -> Option<Result<usize, Failure>> {
        loop {
            let outcome = match self.database(db, shutdown).await {
                Some((client, statements)) => {
                    let apply = store::apply_batch(client, statements, &self.config.consumer, &self.config.base_url, batch);
                    tokio::pin!(apply);
                    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
                    Some(loop {
                        tokio::select! {
                            outcome = &mut apply => break outcome,
                            _ = tick.tick() => keep_alive(messages).await,
                        }
                    })
                }
                None => None,
            };
            match outcome {
                Some(Err(Failure::Database(err))) if unavailable(&err) => {
                    tracing::warn!(error = %store::describe(&err), "database unavailable; holding the batch");
                    *db = None;
                }
                Some(Err(Failure::Overtaken)) => {
                    tracing::warn!("a row of the batch was written meanwhile; applying the batch again");
                }
                Some(outcome) => return Some(outcome),
                None => {}
            }
            if shutdown.is_cancelled() {
                return None;
            }
            keep_alive(messages).await;
            pause(RETRY, shutdown).await;
        }
    }

    /// The lane's connection, made again when it was lost; `None` while the database is away.
    async fn database<'a>(&self, db: &'a mut Option<Db>, shutdown: &CancellationToken) -> Option<&'a mut Db> {
        if db.as_ref().is_some_and(|(client, _)| client.is_closed()) {
            *db = None;
        }
        if db.is_none() {
            match self.connect().await {
                Ok(connected) => {
                    self.set_waiting("");
                    *db = Some(connected);
                }
                Err(err) => {
                    tracing::warn!(error = %store::describe(&err), "cannot use the database; retrying");
                    self.set_waiting("waiting for the database");
                    pause(RETRY, shutdown).await;
                    return None;
                }
            }
        }
        db.as_mut()
    }

    /// Publishes a message to the dead-letter stream and waits for the stream's ack; false
    /// when that failed (the message is then left to come back).
    async fn dead_letter(&self, message: &jetstream::Message, stream_seq: u64, deliveries: i64, reason: &str) -> bool {
        let (subject, headers) = lmsd_service::dlq::dead_letter(
            &self.config.dlq_prefix,
            &self.config.consumer,
            message.subject.as_str(),
            stream_seq,
            deliveries,
            reason,
        );
        let published = match self.js.publish_with_headers(subject, headers, message.payload.clone()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match published {
            Ok(()) => {
                tracing::warn!(subject = %message.subject, stream_seq, reason, "dead-lettered");
                true
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot dead-letter; the message comes back later");
                false
            }
        }
    }
}

async fn keep_alive(messages: &[jetstream::Message]) {
    for message in messages {
        ack(message, AckKind::Progress).await;
    }
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        // the message comes back after the consumer's ack wait; its claim makes that harmless
        tracing::debug!(error = %err, "cannot acknowledge");
    }
}

/// Sleeps `duration` unless `shutdown` comes first.
pub async fn pause(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_citus_worker_lost_mid_statement_or_commit_is_away_other_internal_errors_are_not() {
        let lost = "connection to the remote node localhost:5452 failed: server closed the connection unexpectedly";
        assert!(lost_node(&SqlState::INTERNAL_ERROR, lost));
        assert!(lost_node(&SqlState::INTERNAL_ERROR, "could not commit transaction for shard 102008 on at least one active node"));
        assert!(!lost_node(&SqlState::INTERNAL_ERROR, "could not find shard placement"));
        assert!(!lost_node(&SqlState::UNIQUE_VIOLATION, lost));
    }
}
