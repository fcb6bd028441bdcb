//! lmsd-gateway: the HTTP front door of lmsd. Routes requests to the API
//! workers, the portal, the search service and signed media files; verifies
//! access tokens; limits request rates; reports metrics.
//!
//! Module map:
//! - [`config`]     — layered settings: defaults → TOML file → `LMSD_GATEWAY_*` → flags.
//! - [`error`]      — `AppError`, the one error type, rendered as `application/problem+json`.
//! - [`routes`]     — route classes (api, search, media, portal), auth need, rate class.
//! - [`middleware`] — request id, access log + metrics, the auth/rate-limit gate.
//! - [`auth`]       — JWT verification against the API's JWKS; identity headers.
//! - [`ratelimit`]  — GCRA budgets per user or client IP, per rate class.
//! - [`clientip`]   — client address behind trusted proxies.
//! - [`proxy`]      — forwarding, failover, streaming, WebSocket tunnels.
//! - [`pool`]       — upstream pools: least connections / round robin, passive health.
//! - [`media`]      — signed `/media/*` URLs served from disk or redirected to a CDN.
//! - [`metrics`]    — Prometheus counters and the latency histogram.
//! - [`health`]     — `/healthz`, `/readyz`, `/metrics`.
//! - [`server`]     — the accept loop: header timeout, head size limit, draining shutdown.
//! - this file      — `AppState`, router assembly ([`app`]) and [`run`].
//!   `main.rs` only parses the config and wires logging and signals.

pub mod auth;
pub mod clientip;
pub mod config;
pub mod error;
pub mod health;
pub mod media;
pub mod metrics;
pub mod middleware;
pub mod pool;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod server;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    response::Response,
    routing::get,
    Router,
};
use tokio::net::TcpListener;

use crate::{
    auth::Authenticator, clientip::TrustedProxies, media::Media, metrics::Metrics,
    ratelimit::Limiters, routes::Route, routes::RouteClass,
};
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
    auth: Authenticator,
    limiters: Limiters,
    media: Media,
    metrics: Metrics,
    trusted: TrustedProxies,
}

impl AppState {
    /// Builds the state (pools, key cache, limiters, media key) for a validated `config`.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let proxy = proxy::Proxy::new(&config);
        let auth = Authenticator::new(&config, proxy.client());
        Ok(Self {
            inner: Arc::new(StateInner {
                limiters: Limiters::new(&config),
                media: Media::new(&config)?,
                metrics: Metrics::default(),
                trusted: TrustedProxies::new(config.trusted_proxies.clone()),
                auth,
                proxy,
                config,
            }),
        })
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The reverse proxy (upstream pools and client).
    pub fn proxy(&self) -> &proxy::Proxy {
        &self.inner.proxy
    }

    /// Token verification.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// Rate limiters.
    pub fn limiters(&self) -> &Limiters {
        &self.inner.limiters
    }

    /// Media signatures and files.
    pub fn media(&self) -> &Media {
        &self.inner.media
    }

    /// Process-wide metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Proxies whose forwarding headers are believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted
    }
}

/// The gateway's router: health and metrics endpoints, everything else
/// dispatched by route class.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(dispatch)
        // Layers run outermost-last-added: request id, then observe, then gate.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}

/// Sends a request to the backend of its route class.
async fn dispatch(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let class = request
        .extensions()
        .get::<Route>()
        .map_or(RouteClass::Portal, |r| r.class);
    let proxy = state.proxy();
    let metrics = state.metrics();
    match class {
        RouteClass::Media => state.media().serve(request).await,
        RouteClass::Api => proxy.forward(&proxy.api, request, metrics).await,
        RouteClass::Search => proxy.forward(&proxy.search, request, metrics).await,
        // `/healthz`-like paths with other methods fall through here: the portal decides.
        RouteClass::Portal | RouteClass::Internal => {
            proxy.forward(&proxy.portal, request, metrics).await
        }
    }
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
    let c = state.config();
    let list = |ups: &[config::Upstream]| {
        ups.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        api = %list(&c.upstreams),
        portal = %list(&c.portal_upstreams),
        search = %list(&c.search_upstreams),
        balance = ?c.balance,
        limiters = ?state.limiters(),
        media_dir = ?c.media_dir,
        request_timeout_secs = c.request_timeout_secs,
        max_body_bytes = c.max_body_bytes,
        "configured"
    );
    let options = server::ServeOptions {
        header_timeout: Duration::from_secs(c.header_timeout_secs),
        max_header_bytes: usize::try_from(c.max_header_bytes).unwrap_or(usize::MAX),
        drain_timeout: Duration::from_secs(c.shutdown_timeout_secs),
    };
    let background = [
        tokio::spawn(refresh_keys(state.clone())),
        tokio::spawn(prune_limiters(state.clone())),
    ];
    let threads = match c.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    tracing::info!(threads, "listening on {addr}");

    // Thread per core, like nginx's worker processes: each thread accepts on a
    // clone of the listening socket and serves its connections on its own
    // single-threaded runtime, so a request never hops between threads.
    // State (limiters, token cache, metrics, pools) is shared.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let listener = listener.into_std()?;
    let mut workers = Vec::new();
    for index in 1..threads {
        let listener = listener.try_clone()?;
        let router = app(state.clone());
        let mut stop = stop_rx.clone();
        let worker = std::thread::Builder::new()
            .name(format!("lmsd-gateway-{index}"))
            .spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    let stopped = async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    };
                    server::serve(listener, router, options, stopped).await;
                    Ok(())
                })
            })?;
        workers.push(worker);
    }
    let listener = TcpListener::from_std(listener)?;
    let stopping = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    server::serve(listener, app(state), options, stopping).await;
    for task in background {
        task.abort();
    }
    for worker in workers {
        let joined = tokio::task::spawn_blocking(move || worker.join()).await;
        if let Ok(Ok(Err(err))) = joined {
            tracing::error!(error = %err, "serving thread failed");
        }
    }
    tracing::info!("shut down");
    Ok(())
}

/// Keeps the JWKS fresh so that removed keys stop verifying without a restart.
async fn refresh_keys(state: AppState) {
    let period = Duration::from_secs(state.config().jwks_refresh_secs);
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await; // the first key fetch happens on the first token
    loop {
        ticker.tick().await;
        if let Err(err) = state.auth().jwks().refresh().await {
            tracing::warn!(error = %err, "background JWKS refresh failed; keeping the current keys");
        }
    }
}

/// Drops idle rate-limit keys so memory stays bounded.
async fn prune_limiters(state: AppState) {
    let mut ticker = tokio::time::interval(ratelimit::PRUNE_INTERVAL);
    loop {
        ticker.tick().await;
        state.limiters().prune();
    }
}
