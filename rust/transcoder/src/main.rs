//! `lmsd-transcoder` binary: parse the configuration, set up logging and signals, run.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use lmsd_transcoder::{Cli, Command};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Environment variable holding the `tracing` filter (e.g. `info`, `lmsd_transcoder=debug`).
const LOG_ENV: &str = "LMSD_LOG";
/// `json` for one JSON object per log line; anything else for text.
const LOG_FORMAT_ENV: &str = "LMSD_LOG_FORMAT";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    // One thread: the work is ffmpeg's. It also matters for PR_SET_PDEATHSIG, which fires
    // when the *thread* that started ffmpeg ends; the main thread ends only with the process.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let shutdown = CancellationToken::new();
            watch_signals(shutdown.clone())?;
            match cli.command {
                Command::Serve(config) => lmsd_transcoder::worker::serve(config, shutdown).await,
                Command::Run(config) => {
                    let summary = lmsd_transcoder::oneshot::run(&config, &shutdown).await?;
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(())
                }
            }
        })
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var(LOG_FORMAT_ENV).is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM (handlers installed right away, so a
/// signal during start-up is not lost).
fn watch_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received, stopping"),
            _ = interrupt.recv() => tracing::info!("SIGINT received, stopping"),
        }
        shutdown.cancel();
    });
    Ok(())
}
