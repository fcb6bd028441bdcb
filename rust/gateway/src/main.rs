//! `lmsd-gateway` binary: parse the configuration, set up logging and signals, run.

use std::future::Future;

use anyhow::Context;
use clap::Parser;
use lmsd_gateway::Config;

fn main() -> anyhow::Result<()> {
    load_config_file()?;
    let config = Config::parse();
    // Logs go straight to stderr, one `write` per line like nginx's access log. (A background
    // writer thread was tried: waking it for every line cost more than the write itself.)
    lmsd_service::init_tracing();
    // One thread here; `run` adds one single-threaded runtime per further CPU.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let shutdown = shutdown_signal()?;
            // SO_REUSEPORT: every serving thread gets a socket of its own on this address.
            let listener = lmsd_gateway::bind_listener(config.listen)
                .and_then(tokio::net::TcpListener::from_std)
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            lmsd_gateway::run(listener, config, shutdown).await
        })
}

/// Applies the config file (`--config`/`LMSD_GATEWAY_CONFIG`) as environment
/// variables that are not already set, before clap reads the environment.
/// This runs before any thread exists, so changing the environment is sound.
fn load_config_file() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let from_args = args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--config=")
            .map(str::to_owned)
            .or_else(|| {
                (arg == "--config")
                    .then(|| args.get(i + 1).cloned())
                    .flatten()
            })
    });
    let Some(path) = from_args.or_else(|| std::env::var("LMSD_GATEWAY_CONFIG").ok()) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the config file {path}"))?;
    let pairs = lmsd_gateway::config::file_env(&text, |var| std::env::var_os(var).is_some())
        .with_context(|| format!("in {path}"))?;
    for (name, value) in pairs {
        std::env::set_var(name, value);
    }
    Ok(())
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
