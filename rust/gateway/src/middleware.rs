//! Cross-cutting request layers, applied to every route (health and proxy alike).
//!
//! - [`request_id`]: keeps a well-formed incoming `X-Request-Id` or generates a
//!   UUIDv4 one, forwards it upstream and returns it on the response.
//! - [`access_log`]: one `tracing` line per request (method, path, status, latency).
//!
//! Authentication and rate limiting will live here as further layers.

use std::time::Instant;

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

/// The request-id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id that is kept as-is.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id of the current request, stored in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

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

/// Logs one line per request once the response head is ready.
///
/// Only the path is logged, never the query string (it may carry tokens).
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.0.to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    let response = next.run(request).await;
    tracing::info!(
        target: "lmsd_gateway::access",
        %method,
        %path,
        status = response.status().as_u16(),
        latency = ?started.elapsed(),
        %request_id,
        "request"
    );
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
