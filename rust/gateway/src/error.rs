//! The gateway's error type, rendered as RFC 9457 `application/problem+json`.
//!
//! Variants carry no internal error text: whatever caused them is logged via
//! `tracing` where it happened, and the client only sees a fixed description.

use std::fmt;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

/// Media type of problem details (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answered by the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// The request is malformed, e.g. its path has dot segments (400).
    BadRequest(&'static str),
    /// A token is required and missing, or it did not verify (401).
    Unauthorized(&'static str),
    /// A signed URL did not verify or has expired (403).
    Forbidden(&'static str),
    /// Nothing is served at this path (404).
    NotFound,
    /// The method is not served at this path (405).
    MethodNotAllowed,
    /// The request body exceeds the configured limit (413).
    PayloadTooLarge { limit: u64 },
    /// The client spent its budget for this route class (429).
    TooManyRequests(RateLimited),
    /// A dependency of the gateway itself (the signing keys) is unavailable (503).
    Unavailable,
    /// No upstream could be reached, or it failed mid-exchange (502).
    BadGateway,
    /// The upstream did not answer within the request timeout (504).
    GatewayTimeout,
}

impl AppError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Human-readable, client-safe description.
    pub fn detail(&self) -> String {
        match self {
            Self::BadRequest(why) | Self::Unauthorized(why) | Self::Forbidden(why) => {
                (*why).to_owned()
            }
            Self::NotFound => "nothing is served at this path".to_owned(),
            Self::MethodNotAllowed => "method not allowed here".to_owned(),
            Self::TooManyRequests(limited) => format!(
                "rate limit for {} requests exceeded; retry in {} s",
                limited.class, limited.retry_after_secs
            ),
            Self::Unavailable => "service temporarily unavailable".to_owned(),
            Self::PayloadTooLarge { limit } => {
                format!("request body exceeds the limit of {limit} bytes")
            }
            Self::BadGateway => "no upstream available".to_owned(),
            Self::GatewayTimeout => "upstream did not respond in time".to_owned(),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status(), self.detail())
    }
}

impl std::error::Error for AppError {}

/// Details of a 429 answer, rendered as `Retry-After` and `RateLimit-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// Route class whose budget is spent (`login`, `write`, `read`, `media`).
    pub class: &'static str,
    /// Whole seconds until one more request is allowed (at least 1).
    pub retry_after_secs: u64,
    /// The budget's burst size.
    pub limit: u32,
    /// The budget's window in seconds (`RateLimit-Policy`).
    pub window_secs: u64,
}

/// Problem details body (field order as in RFC 9457 examples).
#[derive(Debug, Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="lmsd", error="invalid_token""#),
                );
            }
            Self::TooManyRequests(limited) => {
                let secs = limited.retry_after_secs;
                headers.insert(header::RETRY_AFTER, secs.into());
                headers.insert("ratelimit-limit", limited.limit.into());
                headers.insert("ratelimit-remaining", 0u32.into());
                headers.insert("ratelimit-reset", secs.into());
                if let Ok(policy) =
                    HeaderValue::from_str(&format!("{};w={}", limited.limit, limited.window_secs))
                {
                    headers.insert("ratelimit-policy", policy);
                }
            }
            _ => {}
        }
        response
    }
}

/// Formats an error with its whole `source()` chain (`outer: inner: root`), for logs only.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn bad_gateway_is_problem_json() {
        let response = AppError::BadGateway.into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"no upstream available"}"#
        );
    }

    #[test]
    fn too_many_requests_has_retry_headers() {
        let response = AppError::TooManyRequests(RateLimited {
            class: "login",
            retry_after_secs: 6,
            limit: 10,
            window_secs: 60,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = response.headers();
        assert_eq!(h[header::RETRY_AFTER], "6");
        assert_eq!(h["ratelimit-limit"], "10");
        assert_eq!(h["ratelimit-remaining"], "0");
        assert_eq!(h["ratelimit-reset"], "6");
        assert_eq!(h["ratelimit-policy"], "10;w=60");
        let response = AppError::Unauthorized("missing access token").into_response();
        assert!(response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }

    #[test]
    fn statuses() {
        assert_eq!(
            AppError::GatewayTimeout.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            AppError::PayloadTooLarge { limit: 5 }.to_string(),
            "413 Payload Too Large: request body exceeds the limit of 5 bytes"
        );
    }
}
