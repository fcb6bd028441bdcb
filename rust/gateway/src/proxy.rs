//! The reverse proxy: header rewriting, upstream selection with failover, body
//! streaming and protocol upgrades (WebSocket).
//!
//! Request flow for a proxied request:
//! 1. Reject a declared `Content-Length` above the limit with 413.
//! 2. Rewrite headers: drop hop-by-hop headers (except an upgrade handshake's),
//!    drop `Host`, set `X-Forwarded-Host`/`-Proto`/`-For` (kept from the client
//!    only when the peer is a trusted proxy).
//! 3. Ask the pool for its candidates (balancing, passive health). Requests
//!    without a body move on to the next candidate when connecting fails;
//!    requests with a body make one attempt (their stream cannot be replayed).
//! 4. Stream the request body (capped at the limit, 413 when exceeded) and the
//!    response body; server-sent events flow through as they are produced.
//! 5. A `101 Switching Protocols` answer splices the two connections together.
//!
//! The request timeout covers everything up to the upstream's response headers,
//! across all attempts; streaming the response body afterwards is not limited.

use std::{
    error::Error as StdError,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{request::Parts, HeaderMap, StatusCode},
    response::Response,
};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use tokio::time::{timeout_at, Instant};

mod headers;

pub(crate) use headers::strip_hop_by_hop;
use headers::{declared_length, forwarded_headers, is_upgrade};

use crate::{
    config::{Config, Upstream},
    error::{chain, AppError},
    metrics::{Metrics, UpstreamError},
    pool::{InFlight, Pool},
};

/// HTTP/1 client used to talk to upstreams (plain HTTP, pooled connections).
pub type HttpClient = Client<HttpConnector, Body>;

/// Time allowed to establish a TCP connection to one upstream before failing over.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a request came from, as resolved by the gate (see `middleware::gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The socket peer.
    pub peer: IpAddr,
    /// The client, after walking trusted proxies.
    pub client: IpAddr,
    /// Whether the peer is a trusted proxy (its `X-Forwarded-*` headers are kept).
    pub trusted_peer: bool,
}

/// Builds the upstream HTTP client.
pub fn build_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// The upstream pools and everything needed to forward requests to them.
#[derive(Debug)]
pub struct Proxy {
    /// API workers (`/api/*`).
    pub api: Arc<Pool>,
    /// Portal servers (everything else).
    pub portal: Arc<Pool>,
    /// Search service (`/search/*`); may be empty.
    pub search: Arc<Pool>,
    request_timeout: Duration,
    max_body_bytes: u64,
}

/// Outcome of one failed attempt against one upstream.
enum AttemptError {
    /// Could not connect: safe to try another upstream.
    Connect,
    /// Anything else: final.
    Fatal(AppError),
}

impl Proxy {
    /// Creates the proxy for `config` (which must have been validated).
    pub fn new(config: &Config) -> Self {
        let pool = |id, upstreams: &[Upstream]| {
            Pool::new(
                id,
                upstreams,
                config.balance,
                config.max_fails,
                Duration::from_secs(config.fail_timeout_secs),
            )
        };
        let portal = if config.portal_upstreams.is_empty() {
            &config.upstreams
        } else {
            &config.portal_upstreams
        };
        Self {
            api: pool(0, &config.upstreams),
            portal: pool(1, portal),
            search: pool(2, &config.search_upstreams),
            request_timeout: config.request_timeout(),
            max_body_bytes: config.max_body_bytes,
        }
    }

    /// The API workers, in configured order (probed by `/readyz`).
    pub fn upstreams(&self) -> Vec<Upstream> {
        self.api.upstreams().cloned().collect()
    }

    /// This thread's upstream client. Each serving thread runs its own
    /// single-threaded runtime (see `server`), and a client per thread keeps
    /// upstream connections, their tasks and their wake-ups on that thread.
    pub fn client(&self) -> HttpClient {
        thread_local! {
            static CLIENT: HttpClient = build_client();
        }
        CLIENT.with(Clone::clone)
    }

    /// Forwards `request` to an upstream of `pool` and returns its (streaming) response.
    pub async fn forward(
        &self,
        pool: &Arc<Pool>,
        request: Request,
        metrics: &Metrics,
    ) -> Result<Response, AppError> {
        if pool.is_empty() {
            return Err(AppError::NotFound);
        }
        let deadline = Instant::now() + self.request_timeout;
        let info = request.extensions().get::<ClientInfo>().copied();
        let (mut parts, body) = request.into_parts();

        if declared_length(&parts.headers).is_some_and(|len| len > self.max_body_bytes) {
            return Err(AppError::PayloadTooLarge {
                limit: self.max_body_bytes,
            });
        }
        let mut on_upgrade = if is_upgrade(&parts.headers) {
            parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
        } else {
            None
        };
        let headers = forwarded_headers(&parts, info, on_upgrade.is_some());
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let candidates = pool.candidates();
        let bodyless = body.is_end_stream() || body.size_hint().exact() == Some(0);

        if bodyless {
            // Nothing is consumed by a failed connect: try each candidate once.
            for &index in &candidates {
                let request = build_request(
                    &parts,
                    pool.upstream(index),
                    path_and_query,
                    &headers,
                    Body::empty(),
                )?;
                match self.attempt(pool, index, request, deadline, metrics).await {
                    Ok((response, guard)) => return Ok(finish(response, guard, on_upgrade.take())),
                    Err(AttemptError::Connect) => continue,
                    Err(AttemptError::Fatal(err)) => return Err(err),
                }
            }
            tracing::error!(
                upstreams = candidates.len(),
                "no upstream accepted the connection"
            );
            Err(AppError::BadGateway)
        } else {
            let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
            let body = Body::new(Limited::new(body, limit));
            let index = candidates[0];
            let request =
                build_request(&parts, pool.upstream(index), path_and_query, &headers, body)?;
            match self.attempt(pool, index, request, deadline, metrics).await {
                Ok((response, guard)) => Ok(finish(response, guard, on_upgrade)),
                Err(AttemptError::Connect) => Err(AppError::BadGateway),
                Err(AttemptError::Fatal(err)) => Err(err),
            }
        }
    }

    /// Sends one request to one upstream, waiting at most until `deadline` for the response head.
    async fn attempt(
        &self,
        pool: &Arc<Pool>,
        index: usize,
        request: axum::http::Request<Body>,
        deadline: Instant,
        metrics: &Metrics,
    ) -> Result<(axum::http::Response<Incoming>, InFlight), AttemptError> {
        let upstream = pool.upstream(index);
        let guard = pool.acquire(index);
        match timeout_at(deadline, self.client().request(request)).await {
            Ok(Ok(response)) => {
                pool.success(index);
                Ok((response, guard))
            }
            Ok(Err(err)) if caused_by::<LengthLimitError>(&err) => {
                tracing::info!(%upstream, limit = self.max_body_bytes, "request body too large");
                Err(AttemptError::Fatal(AppError::PayloadTooLarge {
                    limit: self.max_body_bytes,
                }))
            }
            Ok(Err(err)) if err.is_connect() => {
                tracing::warn!(%upstream, error = %chain(&err), "cannot connect to upstream");
                pool.failure(index);
                metrics.upstream_error(pool.id, UpstreamError::Connect);
                Err(AttemptError::Connect)
            }
            Ok(Err(err)) => {
                tracing::error!(%upstream, error = %chain(&err), "upstream request failed");
                pool.failure(index);
                metrics.upstream_error(pool.id, UpstreamError::Other);
                Err(AttemptError::Fatal(AppError::BadGateway))
            }
            Err(_) => {
                tracing::warn!(%upstream, timeout = ?self.request_timeout, "upstream timed out");
                pool.failure(index);
                metrics.upstream_error(pool.id, UpstreamError::Timeout);
                Err(AttemptError::Fatal(AppError::GatewayTimeout))
            }
        }
    }
}

/// Turns the upstream's response into ours: a tunnel for `101`, else a streamed body
/// that keeps the upstream counted as busy until it ends.
fn finish(
    response: axum::http::Response<Incoming>,
    guard: InFlight,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response {
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = on_upgrade {
            let upstream_side =
                hyper::upgrade::on(axum::http::Response::from_parts(parts.clone(), body));
            tokio::spawn(tunnel(client_side, upstream_side, guard));
            return Response::from_parts(parts, Body::empty());
        }
        // An upgrade nobody asked for cannot be honoured.
        tracing::warn!("upstream switched protocols without an upgrade request");
        return axum::response::IntoResponse::into_response(AppError::BadGateway);
    }
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(
        parts,
        Body::new(Tracked {
            inner: body,
            _guard: guard,
        }),
    )
}

/// Copies bytes both ways between the client and the upstream after a 101.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _guard: InFlight,
) {
    match tokio::try_join!(client, upstream) {
        Ok((client, upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(error = %err, "upgraded connection closed with an error");
            }
        }
        Err(err) => tracing::warn!(error = %err, "protocol upgrade failed"),
    }
}

/// A response body that holds its upstream's in-flight guard until it is done.
struct Tracked {
    inner: Incoming,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn build_request(
    parts: &Parts,
    upstream: &Upstream,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::http::Request<Body>, AppError> {
    let uri = upstream.uri_for(path_and_query).map_err(|err| {
        tracing::error!(%upstream, path_and_query, error = %err, "cannot build upstream URI");
        AppError::BadGateway
    })?;
    let mut request = axum::http::Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers.clone();
    Ok(request)
}

/// True if `T` appears anywhere in `err`'s source chain.
fn caused_by<T: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<T>() {
            return true;
        }
        current = e.source();
    }
    false
}
