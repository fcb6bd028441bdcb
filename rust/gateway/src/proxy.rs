//! The reverse proxy: upstream pool, round-robin selection, header rewriting,
//! failover and body streaming.
//!
//! Request flow for a proxied request:
//! 1. Reject a declared `Content-Length` above the limit with 413.
//! 2. Rewrite headers: drop hop-by-hop headers, drop `Host` (the client sets the
//!    upstream's), set `X-Forwarded-Host`/`-Proto`, append to `X-Forwarded-For`.
//! 3. Pick the next upstream round-robin. Requests without a body are retried on
//!    the following upstreams when connecting fails; requests with a body make a
//!    single attempt (the body stream cannot be replayed) and get 502 on failure.
//! 4. Stream the request body (capped at the limit, 413 when exceeded) and the
//!    response body (untouched, minus hop-by-hop headers).
//!
//! The request timeout covers everything up to the upstream's response headers,
//! across all attempts; streaming the response body afterwards is not limited.

use std::{
    error::Error as StdError,
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use axum::{
    body::{Body, HttpBody},
    extract::{ConnectInfo, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue},
    response::Response,
};
use http_body_util::{LengthLimitError, Limited};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};
use tokio::time::{timeout_at, Instant};

use crate::{
    config::{Config, Upstream},
    error::{chain, AppError},
    AppState,
};

/// HTTP/1 client used to talk to upstreams (plain HTTP, pooled connections).
pub type HttpClient = Client<HttpConnector, Body>;

/// Time allowed to establish a TCP connection to one upstream before failing over.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that describe a single hop and must not be forwarded (RFC 9110 §7.6.1),
/// plus the non-standard `Proxy-Connection`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

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

/// The upstream pool and everything needed to forward requests to it.
#[derive(Debug)]
pub struct Proxy {
    client: HttpClient,
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
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
        Self {
            client: build_client(),
            upstreams: config.upstreams.clone(),
            next: AtomicUsize::new(0),
            request_timeout: config.request_timeout(),
            max_body_bytes: config.max_body_bytes,
        }
    }

    /// The configured upstreams, in order.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// The shared upstream client.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Forwards `request` to an upstream and returns its (streaming) response.
    pub async fn forward(&self, request: Request) -> Result<Response, AppError> {
        let deadline = Instant::now() + self.request_timeout;
        let client_ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let (parts, body) = request.into_parts();

        if declared_length(&parts.headers).is_some_and(|len| len > self.max_body_bytes) {
            return Err(AppError::PayloadTooLarge {
                limit: self.max_body_bytes,
            });
        }

        let headers = forwarded_headers(&parts, client_ip);
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let count = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let bodyless = body.is_end_stream() || body.size_hint().exact() == Some(0);

        if bodyless {
            // Nothing is consumed by a failed connect: try each upstream once.
            for offset in 0..count {
                let upstream = &self.upstreams[(start + offset) % count];
                let request =
                    build_request(&parts, upstream, path_and_query, &headers, Body::empty())?;
                match self.attempt(upstream, request, deadline).await {
                    Ok(response) => return Ok(response),
                    Err(AttemptError::Connect) => continue,
                    Err(AttemptError::Fatal(err)) => return Err(err),
                }
            }
            tracing::error!(upstreams = count, "no upstream accepted the connection");
            Err(AppError::BadGateway)
        } else {
            let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
            let body = Body::new(Limited::new(body, limit));
            let upstream = &self.upstreams[start];
            let request = build_request(&parts, upstream, path_and_query, &headers, body)?;
            match self.attempt(upstream, request, deadline).await {
                Ok(response) => Ok(response),
                Err(AttemptError::Connect) => Err(AppError::BadGateway),
                Err(AttemptError::Fatal(err)) => Err(err),
            }
        }
    }

    /// Sends one request to one upstream, waiting at most until `deadline` for the response head.
    async fn attempt(
        &self,
        upstream: &Upstream,
        request: axum::http::Request<Body>,
        deadline: Instant,
    ) -> Result<Response, AttemptError> {
        match timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Body::new(body)))
            }
            Ok(Err(err)) if err.is_connect() => {
                tracing::warn!(%upstream, error = %chain(&err), "cannot connect to upstream");
                Err(AttemptError::Connect)
            }
            Ok(Err(err)) if caused_by::<LengthLimitError>(&err) => {
                tracing::info!(%upstream, limit = self.max_body_bytes, "request body too large");
                Err(AttemptError::Fatal(AppError::PayloadTooLarge {
                    limit: self.max_body_bytes,
                }))
            }
            Ok(Err(err)) => {
                tracing::error!(%upstream, error = %chain(&err), "upstream request failed");
                Err(AttemptError::Fatal(AppError::BadGateway))
            }
            Err(_) => {
                tracing::warn!(%upstream, timeout = ?self.request_timeout, "upstream timed out");
                Err(AttemptError::Fatal(AppError::GatewayTimeout))
            }
        }
    }
}

/// Fallback handler: proxies everything that no other route claims.
pub async fn handler(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AppError> {
    state.proxy().forward(request).await
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

/// The `Content-Length` the client declared, if any and well-formed.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
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

/// Removes hop-by-hop headers, including those named by `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// The headers to send upstream for a request received as `parts` from `client_ip`.
fn forwarded_headers(parts: &Parts, client_ip: Option<IpAddr>) -> HeaderMap {
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);

    let host = headers.remove(header::HOST).or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    });
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));

    if let Some(ip) = client_ip {
        let previous: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let value = if previous.is_empty() {
            ip.to_string()
        } else {
            format!("{}, {ip}", previous.join(", "))
        };
        let value = HeaderValue::from_str(&value).unwrap_or_else(|_| ip_header(ip));
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers
}

fn ip_header(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).expect("an IP address is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().uri("/p?q=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = parts(&[
            ("connection", "keep-alive, X-Custom-Hop"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic Zm9v"),
            ("x-end-to-end", "kept"),
        ])
        .headers;
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["x-end-to-end"], "kept");
    }

    #[test]
    fn sets_forwarding_headers() {
        let p = parts(&[("host", "lms.example"), ("x-forwarded-for", "10.0.0.1")]);
        let headers = forwarded_headers(&p, Some("127.0.0.1".parse().unwrap()));
        assert!(headers.get(header::HOST).is_none());
        assert_eq!(headers["x-forwarded-host"], "lms.example");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");

        let headers = forwarded_headers(&parts(&[]), Some("::1".parse().unwrap()));
        assert_eq!(headers["x-forwarded-for"], "::1");
        assert!(headers.get("x-forwarded-host").is_none());
    }

    #[test]
    fn declared_length_parsing() {
        assert_eq!(
            declared_length(&parts(&[("content-length", "42")]).headers),
            Some(42)
        );
        assert_eq!(
            declared_length(&parts(&[("content-length", "x")]).headers),
            None
        );
        assert_eq!(declared_length(&parts(&[]).headers), None);
    }
}
