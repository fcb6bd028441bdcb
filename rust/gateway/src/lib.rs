//! lmsd-gateway: the HTTP front door of lmsd, a reverse proxy in front of the
//! lmsd application servers.
//!
//! Module map:
//! - [`config`]     — CLI flags / `LMSD_GATEWAY_*` environment (`Config`, `Upstream`).
//! - [`error`]      — `AppError`, the one error type, rendered as `application/problem+json`.
//! - [`health`]     — `GET /healthz` (liveness) and `GET /readyz` (upstream readiness).
//! - [`middleware`] — layers applied to every route: request id, access log
//!   (authentication and rate limiting will be added here).
//! - [`proxy`]      — upstream client and pool, round robin, header rewriting, failover.
//! - this file      — `AppState`, router assembly ([`app`]) and serving with
//!   graceful shutdown ([`run`]). `main.rs` only parses the config and wires signals.

pub mod config;
pub mod error;
pub mod health;
pub mod middleware;
pub mod proxy;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{routing::get, Router};
use tokio::net::TcpListener;

pub use crate::{config::Config, error::AppError};

/// Service name reported by the health endpoints.
pub const SERVICE_NAME: &str = "lmsd-gateway";
/// Crate version reported by the health endpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared state of all handlers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    config: Config,
    proxy: proxy::Proxy,
}

impl AppState {
    /// Builds the state (upstream client and pool) for a validated `config`.
    pub fn new(config: Config) -> Result<Self, config::ConfigError> {
        config.validate()?;
        let proxy = proxy::Proxy::new(&config);
        Ok(Self {
            inner: Arc::new(StateInner { config, proxy }),
        })
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The reverse proxy (upstream pool and client).
    pub fn proxy(&self) -> &proxy::Proxy {
        &self.inner.proxy
    }
}

/// The gateway's router: health endpoints, everything else proxied.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that
/// `X-Forwarded-For` can be set (as [`run`] does).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(proxy::handler)
        .with_state(state)
        // Outermost last: the request id exists before the access log runs.
        .layer(axum::middleware::from_fn(middleware::access_log))
        .layer(axum::middleware::from_fn(middleware::request_id))
}

/// Serves the gateway on `listener` until `shutdown` resolves, then stops
/// accepting connections and waits for in-flight requests to finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config)?;
    let addr = listener.local_addr()?;
    let upstreams: Vec<String> = state
        .config()
        .upstreams
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::info!(
        upstreams = %upstreams.join(","),
        request_timeout_secs = state.config().request_timeout_secs,
        max_body_bytes = state.config().max_body_bytes,
        "configured"
    );
    tracing::info!("listening on {addr}");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    tracing::info!("shut down");
    Ok(())
}
