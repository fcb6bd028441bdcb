//! The reverse proxy: header rewriting, upstream selection with failover, body
//! streaming and protocol upgrades (WebSocket).
//!
//! Request flow for a proxied request:
//! 1. Reject a declared `Content-Length` above the limit with 413.
//! 2. Rewrite headers: drop hop-by-hop headers (except an upgrade handshake's),
//!    drop `Host`, set `X-Forwarded-Host`/`-Proto`/`-For` (kept from the client
//!    only when the peer is a trusted proxy).
//! 3. Ask the pool for its candidates (balancing, passive health) and take a
//!    connection to the first one from this thread's keep-alive connections
//!    ([`crate::upstream`]), or open one. Requests without a body move on to
//!    the next candidate when connecting fails; requests with a body make one
//!    attempt (as documented; their stream is not replayed).
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
    http::{header, uri::PathAndQuery, HeaderValue, StatusCode},
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

pub(crate) use headers::{ip_header, strip_hop_by_hop};
use headers::{declared_length, is_upgrade, rewrite_request_headers};

use crate::{
    config::{Config, Upstream},
    error::{chain, AppError},
    metrics::{Metrics, UpstreamError},
    pool::{InFlight, Pool},
    upstream::{self, Lease},
};

/// HTTP/1 client used to talk to upstreams (plain HTTP, pooled connections).
pub type HttpClient = Client<HttpConnector, Body>;

pub use crate::upstream::CONNECT_TIMEOUT;
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
    /// Could not connect: safe to try another upstream with the (unsent) request.
    Connect(Box<axum::http::Request<Body>>),
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

    /// This thread's pooled HTTP client, for the gateway's own requests (JWKS,
    /// readiness probes). Proxied requests use [`crate::upstream`] instead.
    pub fn client(&self) -> HttpClient {
        thread_local! {
            static CLIENT: HttpClient = build_client();
        }
        CLIENT.with(Clone::clone)
    }

    /// Forwards `request` to an upstream of `pool` and returns its (streaming) response.
    /// `client` is where the request came from (set by the gate); `peer_header` is the
    /// peer address as a header value, if the caller has one at hand.
    pub async fn forward(
        &self,
        pool: &Arc<Pool>,
        request: hyper::Request<Incoming>,
        client: Option<ClientInfo>,
        peer_header: Option<&HeaderValue>,
        metrics: &Metrics,
    ) -> Result<Response, AppError> {
        if pool.is_empty() {
            return Err(AppError::NotFound);
        }
        let deadline = Instant::now() + self.request_timeout;
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
        rewrite_request_headers(
            &mut parts.headers,
            &parts.uri,
            client,
            on_upgrade.is_some(),
            peer_header,
        );
        let root = PathAndQuery::from_static("/");
        let path_and_query = parts.uri.path_and_query().unwrap_or(&root);
        let candidates = pool.candidates();
        let bodyless = body.is_end_stream() || body.size_hint().exact() == Some(0);
        let body = if bodyless {
            Body::empty()
        } else {
            let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
            Body::new(Limited::new(body, limit))
        };
        // The request is built once; a failed connect does not consume it.
        let mut request = axum::http::Request::new(body);
        *request.method_mut() = parts.method;
        *request.headers_mut() = parts.headers;

        // Nothing is sent before a connection exists, but a request with a body
        // makes one attempt only (as documented: its stream is not replayed).
        let attempts = if bodyless { candidates.len() } else { 1 };
        for &index in &candidates[..attempts] {
            let upstream = pool.upstream(index);
            *request.uri_mut() = upstream.target_for(path_and_query).map_err(|err| {
                tracing::error!(%upstream, %path_and_query, error = %err, "cannot build upstream URI");
                AppError::BadGateway
            })?;
            request
                .headers_mut()
                .insert(header::HOST, pool.host_header(index).clone());
            match self.attempt(pool, index, request, deadline, metrics).await {
                Ok((response, guard, lease)) => {
                    return Ok(finish(response, guard, lease, on_upgrade.take()))
                }
                Err(AttemptError::Connect(unsent)) => request = *unsent,
                Err(AttemptError::Fatal(err)) => return Err(err),
            }
        }
        if bodyless {
            tracing::error!(
                upstreams = candidates.len(),
                "no upstream accepted the connection"
            );
        }
        Err(AppError::BadGateway)
    }

    /// Sends one request to one upstream, waiting at most until `deadline` for the
    /// response head. A kept-alive connection that turns out to be closed before the
    /// request was written is replaced by a new one, once.
    async fn attempt(
        &self,
        pool: &Arc<Pool>,
        index: usize,
        mut request: axum::http::Request<Body>,
        deadline: Instant,
        metrics: &Metrics,
    ) -> Result<(axum::http::Response<Incoming>, InFlight, Lease), AttemptError> {
        let upstream = pool.upstream(index);
        let guard = pool.acquire(index);
        let key = upstream::Key {
            pool: pool.uid(),
            index,
        };
        let mut fresh_only = false;
        loop {
            let reused = if fresh_only {
                None
            } else {
                upstream::reuse(key).await
            };
            let mut lease = match reused {
                Some(lease) => lease,
                None => match timeout_at(deadline, upstream::connect(key, upstream)).await {
                    Ok(Ok(lease)) => lease,
                    Ok(Err(err)) => {
                        tracing::warn!(%upstream, error = %err, "cannot connect to upstream");
                        pool.failure(index);
                        metrics.upstream_error(pool.id, UpstreamError::Connect);
                        return Err(AttemptError::Connect(Box::new(request)));
                    }
                    Err(_) => return Err(self.timed_out(pool, index, metrics)),
                },
            };
            let sent = timeout_at(deadline, lease.sender.try_send_request(request)).await;
            match sent {
                Ok(Ok(response)) => {
                    pool.success(index);
                    return Ok((response, guard, lease));
                }
                Ok(Err(mut err)) => {
                    let unsent = err.take_message();
                    let err = err.into_error();
                    if caused_by::<LengthLimitError>(&err) {
                        tracing::info!(%upstream, limit = self.max_body_bytes, "request body too large");
                        return Err(AttemptError::Fatal(AppError::PayloadTooLarge {
                            limit: self.max_body_bytes,
                        }));
                    }
                    match unsent {
                        // The upstream closed an idle connection just as it was reused.
                        Some(unsent) if lease.reused => {
                            tracing::debug!(%upstream, error = %err, "kept-alive connection was closed; reconnecting");
                            request = unsent;
                            fresh_only = true;
                        }
                        _ => {
                            tracing::error!(%upstream, error = %chain(&err), "upstream request failed");
                            pool.failure(index);
                            metrics.upstream_error(pool.id, UpstreamError::Other);
                            return Err(AttemptError::Fatal(AppError::BadGateway));
                        }
                    }
                }
                Err(_) => return Err(self.timed_out(pool, index, metrics)),
            }
        }
    }

    fn timed_out(&self, pool: &Pool, index: usize, metrics: &Metrics) -> AttemptError {
        let upstream = pool.upstream(index);
        tracing::warn!(%upstream, timeout = ?self.request_timeout, "upstream timed out");
        pool.failure(index);
        metrics.upstream_error(pool.id, UpstreamError::Timeout);
        AttemptError::Fatal(AppError::GatewayTimeout)
    }
}

/// Turns the upstream's response into ours: a tunnel for `101`, else a streamed body
/// that keeps the upstream counted as busy until it ends, then offers the connection
/// for reuse.
fn finish(
    response: axum::http::Response<Incoming>,
    guard: InFlight,
    lease: Lease,
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
            lease: Some(lease),
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

/// A response body that holds its upstream's in-flight guard until it is done,
/// and returns the connection for reuse once the body was read to the end.
struct Tracked {
    inner: Incoming,
    lease: Option<Lease>,
    _guard: InFlight,
}

impl Tracked {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // A body nobody polled may still be complete (HEAD, 204, `Content-Length: 0`).
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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
