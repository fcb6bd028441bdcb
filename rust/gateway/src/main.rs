//! `lmsd-gateway` binary: parse the configuration, set up logging and signals, run.

use std::{future::Future, io::IsTerminal};

use anyhow::Context;
use clap::Parser;
use lmsd_gateway::Config;
use tracing_subscriber::EnvFilter;

/// Environment variable holding the `tracing` filter (e.g. `info`, `lmsd_gateway=debug`).
const LOG_ENV: &str = "LMSD_LOG";

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let shutdown = shutdown_signal()?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            lmsd_gateway::run(listener, config, shutdown).await
        })
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Resolves on the first SIGINT or SIGTERM. The SIGTERM handler is installed
/// right away, so a signal arriving during start-up is not lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    Ok(async move {
        #[cfg(unix)]
        let terminate = terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        let interrupt = async {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %err, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = interrupt => tracing::info!("SIGINT received, draining in-flight requests"),
            _ = terminate => tracing::info!("SIGTERM received, draining in-flight requests"),
        }
    })
}
