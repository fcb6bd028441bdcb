//! lmsd-gateway: the HTTP front door of lmsd. Routes requests to the API
//! workers, the portal, the search service and signed media files; verifies
//! access tokens; limits request rates; reports metrics.
//!
//! Module map:
//! - [`config`]     — layered settings: defaults → TOML file → `LMSD_GATEWAY_*` → flags.
//! - [`error`]      — `AppError`, the one error type, rendered as `application/problem+json`.
//! - [`routes`]     — route classes (api, search, media, portal), auth need, rate class.
//! - [`middleware`] — the request pipeline: request id, classification, the
//!   auth/rate-limit gate, dispatch, access log + metrics.
//! - [`accesslog`]  — the access log, formatted by hand and buffered per thread.
//! - [`auth`]       — JWT verification against the API's JWKS; identity headers.
//! - [`ratelimit`]  — GCRA budgets per user or client IP, per rate class.
//! - [`sharedrate`] — optional budget shared by replicas through NATS JetStream KV.
//! - [`clientip`]   — client address behind trusted proxies.
//! - [`proxy`]      — forwarding, failover, streaming, WebSocket tunnels.
//! - [`upstream`]   — per-thread keep-alive connections to upstreams (hyper's `conn::http1`).
//! - [`pool`]       — upstream pools: least connections / round robin, passive health.
//! - [`media`]      — signed `/media/*` URLs served from disk or redirected to a CDN.
//! - [`metrics`]    — Prometheus counters and the latency histogram.
//! - [`health`]     — `/healthz`, `/readyz`, `/metrics`.
//! - [`server`]     — the accept loop: header timeout, head size limit, draining shutdown.
//! - this file      — `AppState` and [`run`].
//!   `main.rs` only parses the config and wires logging and signals.

pub mod accesslog;
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
pub mod sharedrate;
pub mod upstream;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::net::TcpListener;

use crate::{
    auth::Authenticator, clientip::TrustedProxies, media::Media, metrics::Metrics,
    ratelimit::Limiters,
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
    shared: Option<sharedrate::SharedLimiter>,
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
                shared: sharedrate::SharedLimiter::new(&config),
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

    /// The rate budget shared with other replicas, when configured.
    pub fn shared_limiter(&self) -> Option<&sharedrate::SharedLimiter> {
        self.inner.shared.as_ref()
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
        shared_rate = ?state.shared_limiter(),
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
    let mut background = vec![
        tokio::spawn(refresh_keys(state.clone())),
        tokio::spawn(prune_limiters(state.clone())),
    ];
    if state.shared_limiter().is_some() {
        let state = state.clone();
        background.push(tokio::spawn(async move {
            if let Some(shared) = state.shared_limiter() {
                shared.connect().await;
            }
        }));
    }
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
        let listener = sibling_listener(&listener)?;
        let state = state.clone();
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
                    server::serve(listener, state, options, stopped).await;
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
    server::serve(listener, state.clone(), options, stopping).await;
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

/// The listening socket for another serving thread: a socket of its own on the
/// same address when the original allows port sharing (`SO_REUSEPORT`, as
/// `main` binds it), so that the kernel spreads new connections evenly over the
/// threads; otherwise a clone of the shared socket (whichever thread wakes first
/// accepts).
fn sibling_listener(listener: &std::net::TcpListener) -> std::io::Result<std::net::TcpListener> {
    #[cfg(unix)]
    if socket2::SockRef::from(listener).reuse_port().unwrap_or(false) {
        return reuse_port_listener(listener.local_addr()?);
    }
    listener.try_clone()
}

/// Listens on `addr` (port 0: any free port) with `SO_REUSEPORT`, so each serving
/// thread of [`run`] can have a socket of its own. Fails like a plain bind when
/// something already listens there: port sharing is only among our threads.
pub fn bind_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let probe = std::net::TcpListener::bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    reuse_port_listener(addr)
}

/// A non-blocking listening socket on `addr` with `SO_REUSEADDR` and (on Unix)
/// `SO_REUSEPORT`.
fn reuse_port_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
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
        if let Some(shared) = state.shared_limiter() {
            shared.prune();
        }
    }
}
