//! `lmsd-projector` binary: parse the configuration, then serve until SIGTERM.

use clap::Parser;
use lmsd_projector::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread: a batch's work is mostly waiting on PostgreSQL; several lanes keep the
    // thread busy while the database works, and the machine's cores go to the database.
    lmsd_service::serve_single_threaded(|shutdown| async move {
        match cli.command {
            Command::Serve(config) => lmsd_projector::consumer::serve(config, shutdown).await,
        }
    })
}
