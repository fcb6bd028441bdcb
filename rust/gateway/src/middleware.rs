//! Layers applied to every request, outermost first:
//!
//! - [`request_id`]: keeps a well-formed incoming `X-Request-Id` or generates a
//!   UUIDv4 one, forwards it upstream and returns it on the response.
//! - [`observe`]: classifies the route (400 for paths that are not in normal
//!   form), then writes the access log line and the metrics.
//! - [`gate`]: resolves the client address, strips forged `X-Lmsd-*` headers,
//!   verifies the access token, and spends the rate budget.

use std::{net::IpAddr, net::Ipv4Addr, net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use uuid::Uuid;

use crate::{
    auth::{strip_identity_headers, token_from, Identity, X_LMSD_CLIENT_IP},
    error::AppError,
    proxy::ClientInfo,
    ratelimit::ClientKey,
    routes::{classify, AuthNeed, RateClass, Route, RouteClass},
    AppState,
};

/// The request-id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id that is kept as-is.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id of the current request, stored in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// Who made a request, attached to the response for the access log.
#[derive(Debug, Clone)]
struct AccessInfo {
    client: IpAddr,
    user: Option<Uuid>,
}

/// An incoming id is kept when it is 1..=128 visible ASCII characters.
fn is_acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn new_request_id() -> HeaderValue {
    let mut buf = Uuid::encode_buffer();
    let id = Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

/// Ensures every request has an `X-Request-Id` and echoes it on the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|value| is_acceptable_request_id(value))
        .cloned()
        .unwrap_or_else(new_request_id);
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), id.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

/// Classifies the request, then logs one line and records metrics once the
/// response head is ready. Only the path is logged, never the query string
/// (signed media URLs and the like carry secrets there).
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.0.to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    let (response, class) = match classify(&method, &path, &state.config().public_routes) {
        Ok(route) => {
            request.extensions_mut().insert(route);
            (next.run(request).await, route.class)
        }
        Err(err) => (err.into_response(), RouteClass::Portal),
    };
    let latency = started.elapsed();
    let status = response.status().as_u16();
    state.metrics().observe(class, status, latency);
    let access = response.extensions().get::<AccessInfo>();
    tracing::info!(
        target: "lmsd_gateway::access",
        %method,
        %path,
        status,
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        route = class.as_str(),
        client = %access.map_or(String::new(), |a| a.client.to_string()),
        user = %access.and_then(|a| a.user).map_or(String::new(), |u| u.to_string()),
        %request_id,
        "request"
    );
    response
}

/// Authentication and rate limiting for classified requests.
pub async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<Route>().copied() else {
        return AppError::BadRequest("unclassified request").into_response();
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let trusted = state.trusted_proxies();
    let client = trusted.client_ip(peer, request.headers());
    let info = ClientInfo {
        peer,
        client,
        trusted_peer: trusted.trusts(peer),
    };
    request.extensions_mut().insert(info);

    let headers = request.headers_mut();
    strip_identity_headers(headers);
    if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
        headers.insert(X_LMSD_CLIENT_IP.clone(), value);
    }

    let mut identity: Option<Arc<Identity>> = None;
    if route.auth != AuthNeed::Skip {
        let verified = match token_from(request.headers()) {
            Some(token) => Some(state.auth().verify(token).await),
            None => None,
        };
        match (verified, route.auth) {
            (Some(Ok(id)), _) => identity = Some(id),
            (Some(Err(err)), AuthNeed::Required) => return refuse(&state, route, client, err),
            (None, AuthNeed::Required) => {
                return refuse(
                    &state,
                    route,
                    client,
                    AppError::Unauthorized("missing access token"),
                )
            }
            // Public route: a missing or stale token just means anonymous.
            _ => {}
        }
    }
    if let Some(id) = &identity {
        id.apply(request.headers_mut());
    }

    let mut allowed = None;
    if let Some(class) = route.rate {
        let key = match (&identity, class) {
            (Some(id), c) if c != RateClass::Login => ClientKey::User(id.user_id),
            _ => ClientKey::Ip(client),
        };
        match state.limiters().check(class, &key) {
            Ok(a) => allowed = a,
            Err(err) => {
                state.metrics().limited(class);
                return with_access(err.into_response(), client, identity.as_deref());
            }
        }
    }

    let mut response = next.run(request).await;
    if let Some(allowed) = allowed {
        let h = response.headers_mut();
        h.insert("ratelimit-limit", allowed.limit.into());
        h.insert("ratelimit-remaining", allowed.remaining.into());
    }
    with_access(response, client, identity.as_deref())
}

/// Answers 401 — unless the client's IP budget is spent, so that floods of bad
/// tokens are throttled like any other traffic.
fn refuse(state: &AppState, route: Route, client: IpAddr, err: AppError) -> Response {
    if let Some(class) = route.rate {
        if let Err(limited) = state.limiters().check(class, &ClientKey::Ip(client)) {
            state.metrics().limited(class);
            return with_access(limited.into_response(), client, None);
        }
    }
    state.metrics().auth_failure();
    with_access(err.into_response(), client, None)
}

fn with_access(mut response: Response, client: IpAddr, identity: Option<&Identity>) -> Response {
    response.extensions_mut().insert(AccessInfo {
        client,
        user: identity.map(|id| id.user_id),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_validation() {
        assert!(is_acceptable_request_id(&HeaderValue::from_static(
            "abc-123"
        )));
        assert!(!is_acceptable_request_id(&HeaderValue::from_static("")));
        assert!(!is_acceptable_request_id(&HeaderValue::from_static(
            "has space"
        )));
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(!is_acceptable_request_id(
            &HeaderValue::from_str(&long).unwrap()
        ));
    }

    #[test]
    fn generated_ids_are_uuid_v4() {
        let id = new_request_id();
        let parsed = Uuid::parse_str(id.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(new_request_id(), id);
    }
}
