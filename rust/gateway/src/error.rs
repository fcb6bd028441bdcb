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
    /// The request body exceeds the configured limit (413).
    PayloadTooLarge { limit: u64 },
    /// No upstream could be reached, or it failed mid-exchange (502).
    BadGateway,
    /// The upstream did not answer within the request timeout (504).
    GatewayTimeout,
}

impl AppError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Human-readable, client-safe description.
    pub fn detail(&self) -> String {
        match self {
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
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
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
