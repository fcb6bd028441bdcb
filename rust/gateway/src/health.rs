//! Liveness (`/healthz`) and readiness (`/readyz`) endpoints.
//!
//! `/healthz` never touches upstreams; `/readyz` probes every upstream's
//! `GET /healthz` concurrently and is ready when at least one answers 2xx.

use std::{net::IpAddr, time::Duration};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::{
    config::Upstream,
    error::AppError,
    proxy::HttpClient,
    AppState, SERVICE_NAME, VERSION,
};

/// How long one upstream may take to answer a readiness probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

/// `GET /healthz`: the gateway process is alive.
pub async fn healthz() -> Json<impl Serialize> {
    Json(Health {
        status: "ok",
        service: SERVICE_NAME,
        version: VERSION,
    })
}

#[derive(Debug, Serialize)]
struct Readiness {
    status: &'static str,
    service: &'static str,
    upstreams: Vec<UpstreamHealth>,
}

#[derive(Debug, Serialize)]
struct UpstreamHealth {
    url: String,
    healthy: bool,
}

/// `GET /readyz`: 200 if at least one upstream is healthy, else 503.
pub async fn readyz(state: &AppState) -> Response {
    let upstreams = state.proxy().upstreams();
    let upstreams = upstreams.as_slice();
    let mut probes = JoinSet::new();
    for (index, upstream) in upstreams.iter().enumerate() {
        let client = state.proxy().client();
        let upstream = upstream.clone();
        probes.spawn(async move { (index, probe(&client, &upstream).await) });
    }
    let mut healthy = vec![false; upstreams.len()];
    while let Some(joined) = probes.join_next().await {
        match joined {
            Ok((index, ok)) => healthy[index] = ok,
            Err(err) => tracing::error!(error = %err, "readiness probe task failed"),
        }
    }

    let any_healthy = healthy.iter().any(|ok| *ok);
    let body = Readiness {
        status: if any_healthy { "ready" } else { "unavailable" },
        service: SERVICE_NAME,
        upstreams: upstreams
            .iter()
            .zip(healthy)
            .map(|(upstream, healthy)| UpstreamHealth {
                url: upstream.to_string(),
                healthy,
            })
            .collect(),
    };
    let status = if any_healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format, for clients in `metrics_allow` only
/// (others get 404, so the endpoint does not advertise itself).
pub fn metrics(state: &AppState, client: IpAddr) -> Response {
    let allowed = state
        .config()
        .metrics_allow
        .iter()
        .any(|net| net.contains(client));
    if !allowed {
        return AppError::NotFound.into_response();
    }
    let mut text = state.metrics().render();
    if let Some(shared) = state.shared_limiter() {
        use std::fmt::Write;
        let _ = write!(
            text,
            "# HELP lmsd_gateway_shared_rate_up 1 while the rate budget shared through NATS is in use.\n\
             # TYPE lmsd_gateway_shared_rate_up gauge\n\
             lmsd_gateway_shared_rate_up {}\n\
             # HELP lmsd_gateway_shared_rate_fallbacks_total Requests limited locally only because NATS was unavailable.\n\
             # TYPE lmsd_gateway_shared_rate_fallbacks_total counter\n\
             lmsd_gateway_shared_rate_fallbacks_total {}\n",
            u8::from(shared.is_up()),
            shared.fallbacks()
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// True if `upstream` answers `GET /healthz` with 2xx within [`PROBE_TIMEOUT`].
async fn probe(client: &HttpClient, upstream: &Upstream) -> bool {
    let request = match upstream.uri_for("/healthz").and_then(|uri| {
        Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Body::empty())
    }) {
        Ok(request) => request,
        Err(err) => {
            tracing::error!(%upstream, error = %err, "cannot build readiness probe");
            return false;
        }
    };
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status();
        // Drain the (small) body so the connection can return to the pool.
        response.into_body().collect().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status)
    };
    match tokio::time::timeout(PROBE_TIMEOUT, exchange).await {
        Ok(Ok(status)) if status.is_success() => true,
        Ok(Ok(status)) => {
            tracing::warn!(%upstream, status = status.as_u16(), "upstream not healthy");
            false
        }
        Ok(Err(err)) => {
            tracing::warn!(%upstream, error = %crate::error::chain(&*err), "upstream health probe failed");
            false
        }
        Err(_) => {
            tracing::warn!(%upstream, timeout = ?PROBE_TIMEOUT, "upstream health probe timed out");
            false
        }
    }
}
