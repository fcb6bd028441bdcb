//! `lmsd-projector` binary: parse the configuration, set up logging and signals, run.

use anyhow::Context;
use clap::Parser;
use lmsd_projector::{Cli, Command};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    lmsd_service::init_tracing();
    // One thread: a batch's work is mostly waiting on PostgreSQL; several lanes keep the
    // thread busy while the database works, and the machine's cores go to the database.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let shutdown = CancellationToken::new();
            lmsd_service::watch_signals(shutdown.clone())?;
            match cli.command {
                Command::Serve(config) => lmsd_projector::consumer::serve(config, shutdown).await,
            }
        })
}
