//! Command line and environment: `lmsd-projector serve`. Every flag has an `LMSD_PROJECTOR_*`
//! variable; flags win over the environment. The runtime (`lmsd/runtime/components.py`) sets
//! them from the consumer's declaration in `lmsd/events/streams.py`, so the Python side stays
//! the one place where streams and consumers are defined.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lmsd-projector",
    version,
    about = "Applies learning events from JetStream to the progress, gradebook and xAPI projections"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the learning consumer until SIGTERM.
    Serve(ServeConfig),
}

/// `lmsd-projector serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// NATS server.
    #[arg(long, env = "LMSD_PROJECTOR_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// JSON file `{"user": …, "password": …}` (mode 0600) with the NATS credentials.
    #[arg(long, env = "LMSD_PROJECTOR_NATS_AUTH_FILE")]
    pub nats_auth_file: Option<PathBuf>,

    /// JSON file `{"dsn": "postgresql://…"}` (mode 0600): the campus database, as the
    /// application role.
    #[arg(long, env = "LMSD_PROJECTOR_PG_AUTH_FILE")]
    pub pg_auth_file: PathBuf,

    /// Stream the consumer reads.
    #[arg(long, env = "LMSD_PROJECTOR_STREAM", default_value = "LMSD_EVENTS")]
    pub stream: String,

    /// Durable pull consumer (created by `lmsd install`); also the name under which applied
    /// events are recorded (`consumer_applied.consumer`, `event_consumers.name`).
    #[arg(long, env = "LMSD_PROJECTOR_CONSUMER", default_value = "learning")]
    pub consumer: String,

    /// Events applied in one database transaction, at most.
    #[arg(long, env = "LMSD_PROJECTOR_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,

    /// Batches applied at once (each on its own database connection).
    #[arg(long, env = "LMSD_PROJECTOR_CONCURRENCY", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// Deliveries of an event that cannot be applied before it goes to the dead-letter stream.
    #[arg(long, env = "LMSD_PROJECTOR_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Prefix of dead-letter subjects: `<prefix>.<consumer>.<original subject>`.
    #[arg(long, env = "LMSD_PROJECTOR_DLQ_PREFIX", default_value = "lmsd-dlq")]
    pub dlq_prefix: String,

    /// The portal's URL: xAPI activity IRIs live under it.
    #[arg(long, env = "LMSD_PROJECTOR_BASE_URL")]
    pub base_url: String,

    /// Rewritten every second with {"pid", "time", "version", "detail"} for the health probe.
    #[arg(long, env = "LMSD_PROJECTOR_HEARTBEAT_FILE")]
    pub heartbeat_file: Option<PathBuf>,
}
