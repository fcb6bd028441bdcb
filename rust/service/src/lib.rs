//! lmsd-service: what every long-running lmsd Rust process (the transcoder, the projector)
//! shares with the others:
//!
//! - [`init_tracing`]: logs on stderr, text or JSON (`LMSD_LOG`, `LMSD_LOG_FORMAT`);
//! - [`watch_signals`]: SIGTERM/SIGINT cancel a token (the supervisor stops processes so);
//! - [`serve_single_threaded`]: a worker's `main` on one thread until those signals;
//! - [`heartbeat`]: the file the runtime's health probe reads (`lmsd/runtime/health.py`);
//! - [`dlq`]: dead letters in the format `lmsd events dlq` reads;
//! - [`read_secret_json`]: credentials handed over as a 0600 JSON file, never on argv or in
//!   the environment; [`connect_nats`] with them.

use std::{io::IsTerminal, os::unix::fs::PermissionsExt, path::Path, time::Duration};

use anyhow::Context;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

pub mod dlq;
pub mod heartbeat;

/// Environment variable holding the `tracing` filter (e.g. `info`, `lmsd_projector=debug`).
pub const LOG_ENV: &str = "LMSD_LOG";
/// `json` for one JSON object per log line; anything else for text.
pub const LOG_FORMAT_ENV: &str = "LMSD_LOG_FORMAT";

/// Logs to stderr (the supervisor writes it to `logs/<component>.log`).
pub fn init_tracing() {
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
/// signal during start-up is not lost). Needs a running Tokio runtime.
pub fn watch_signals(shutdown: CancellationToken) -> anyhow::Result<()> {
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

/// Runs `serve` on a single-threaded Tokio runtime with logging set up, handing it a token
/// that SIGTERM/SIGINT cancel. For the workers whose work is waiting (on ffmpeg, on
/// PostgreSQL): one thread keeps the machine's cores for what they wait on.
pub fn serve_single_threaded<F, Fut>(serve: F) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    init_tracing();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let shutdown = CancellationToken::new();
            watch_signals(shutdown.clone())?;
            serve(shutdown).await
        })
}

/// Reads a JSON credentials file (`what` names it in errors). The runtime writes these with
/// mode 0600; a file readable by others is used, with a warning.
pub fn read_secret_json<T: DeserializeOwned>(path: &Path, what: &str, shape: &str) -> anyhow::Result<T> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the {what} is readable by others; it should be mode 0600");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: expected {shape}", path.display()))
}

#[derive(serde::Deserialize)]
struct NatsCredentials {
    user: String,
    password: String,
}

/// A NATS connection for a supervised service: `auth_file` (`{"user", "password"}`, 0600)
/// when given; the first connection is retried, like every later one, while NATS starts.
pub async fn connect_nats(name: &str, url: &str, auth_file: Option<&Path>) -> anyhow::Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    if let Some(path) = auth_file {
        let nats: NatsCredentials = read_secret_json(path, "NATS auth file", "{\"user\": …, \"password\": …}")?;
        options = options.user_and_password(nats.user, nats.password);
    }
    options
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Pair {
        user: String,
        password: String,
    }

    #[test]
    fn reads_credentials_and_names_the_file_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, r#"{"user": "u", "password": "p"}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pair: Pair = read_secret_json(&path, "NATS auth file", "{\"user\": …}").unwrap();
        assert_eq!((pair.user.as_str(), pair.password.as_str()), ("u", "p"));

        std::fs::write(&path, "not json").unwrap();
        let err = read_secret_json::<Pair>(&path, "NATS auth file", "{\"user\": …}").unwrap_err();
        assert!(format!("{err:#}").contains("auth.json: expected {\"user\": …}"), "{err:#}");
        let missing = read_secret_json::<Pair>(&dir.path().join("none"), "NATS auth file", "")
            .unwrap_err();
        assert!(format!("{missing:#}").starts_with("cannot read the NATS auth file"), "{missing:#}");
    }
}
