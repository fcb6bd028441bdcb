//! Route classification: which backend serves a request, whether it needs a
//! token, and which rate budget it spends.
//!
//! Decisions are made on the percent-decoded path, because that is what the
//! upstreams route on (ASGI decodes `%2F` to `/`); otherwise `/api/v1/auth%2F..%2Fme`
//! could look public here and private upstream. Paths with dot segments,
//! backslashes or NUL are refused outright, for the same reason.

use std::borrow::Cow;

use axum::http::Method;
use percent_encoding::percent_decode_str;

use crate::{config::RoutePattern, error::AppError};

/// Which backend (or built-in handler) serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// `/healthz`, `/readyz`, `/metrics`: answered by the gateway itself.
    Internal,
    /// `/api/*`: the API workers.
    Api,
    /// `/search/*`: the search service.
    Search,
    /// `/media/*`: signed HLS files from disk (or a CDN redirect).
    Media,
    /// Everything else: the portal.
    Portal,
}

impl RouteClass {
    /// All classes, in metrics order.
    pub const ALL: [Self; 5] = [
        Self::Internal,
        Self::Api,
        Self::Search,
        Self::Media,
        Self::Portal,
    ];

    /// Label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Api => "api",
            Self::Search => "search",
            Self::Media => "media",
            Self::Portal => "portal",
        }
    }

    /// Index into per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which rate budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Sign-in attempts: always keyed by client IP.
    Login,
    /// Unsafe methods.
    Write,
    /// Safe methods.
    Read,
    /// Media files.
    Media,
}

impl RateClass {
    /// All classes, in metrics order.
    pub const ALL: [Self; 4] = [Self::Login, Self::Write, Self::Read, Self::Media];

    /// Label used in logs, metrics and the 429 body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Write => "write",
            Self::Read => "read",
            Self::Media => "media",
        }
    }

    /// Index into per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Whether a request must carry a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthNeed {
    /// 401 without a valid token.
    Required,
    /// A valid token adds identity headers; a bad or missing one is ignored.
    Optional,
    /// Tokens are not looked at (health, media with its own signatures).
    Skip,
}

/// The classification of one request, stored in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub class: RouteClass,
    pub rate: Option<RateClass>,
    pub auth: AuthNeed,
}

/// Endpoints where guessing a secret is the attack: the API's sign-in, the
/// portal's sign-in form and the one-time password-reset token.
const LOGIN_ROUTES: [&str; 3] = [
    "/api/v1/auth/login",
    "/login",
    "/api/v1/auth/password-reset/confirm",
];

/// Percent-decodes `raw` and refuses paths that could be normalised differently upstream.
pub fn decode_path(raw: &str) -> Result<Cow<'_, str>, AppError> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| AppError::BadRequest("the path is not valid UTF-8"))?;
    if !decoded.starts_with('/')
        || decoded.contains(['\\', '\0'])
        || decoded
            .split('/')
            .any(|segment| segment == "." || segment == "..")
    {
        return Err(AppError::BadRequest("the path is not in normal form"));
    }
    Ok(decoded)
}

/// Classifies a request for `raw_path` (as received) with `method`.
pub fn classify(
    method: &Method,
    raw_path: &str,
    public: &[RoutePattern],
) -> Result<Route, AppError> {
    let path = decode_path(raw_path)?;
    let path = path.as_ref();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return Ok(Route {
            class: RouteClass::Internal,
            rate: None,
            auth: AuthNeed::Skip,
        });
    }
    let class = if path.starts_with("/api/") || path == "/api" {
        RouteClass::Api
    } else if path.starts_with("/search/") || path == "/search" {
        RouteClass::Search
    } else if path.starts_with("/media/") || path == "/media" {
        RouteClass::Media
    } else {
        RouteClass::Portal
    };
    let rate = if class == RouteClass::Media {
        RateClass::Media
    } else if method == Method::POST && LOGIN_ROUTES.contains(&path) {
        RateClass::Login
    } else if method.is_safe() {
        RateClass::Read
    } else {
        RateClass::Write
    };
    let auth = match class {
        RouteClass::Media | RouteClass::Internal => AuthNeed::Skip,
        RouteClass::Portal => AuthNeed::Optional,
        RouteClass::Api | RouteClass::Search => {
            if public.iter().any(|pattern| pattern.matches(method, path)) {
                AuthNeed::Optional
            } else {
                AuthNeed::Required
            }
        }
    };
    Ok(Route {
        class,
        rate: Some(rate),
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_PUBLIC_ROUTES;

    fn public() -> Vec<RoutePattern> {
        DEFAULT_PUBLIC_ROUTES
            .split(',')
            .map(|p| p.parse().unwrap())
            .collect()
    }

    fn route(method: Method, path: &str) -> Route {
        classify(&method, path, &public()).unwrap()
    }

    #[test]
    fn classes_and_budgets() {
        let r = route(Method::GET, "/api/v1/me");
        assert_eq!(
            (r.class, r.rate, r.auth),
            (RouteClass::Api, Some(RateClass::Read), AuthNeed::Required)
        );
        let r = route(Method::POST, "/api/v1/auth/login");
        assert_eq!(
            (r.rate, r.auth),
            (Some(RateClass::Login), AuthNeed::Optional)
        );
        let r = route(Method::POST, "/login");
        assert_eq!(
            (r.class, r.rate, r.auth),
            (
                RouteClass::Portal,
                Some(RateClass::Login),
                AuthNeed::Optional
            )
        );
        let r = route(Method::DELETE, "/api/v1/courses/1");
        assert_eq!(r.rate, Some(RateClass::Write));
        assert_eq!(
            route(Method::GET, "/api/v1/campus").auth,
            AuthNeed::Optional
        );
        assert_eq!(
            route(Method::GET, "/api/v1/campus/x").auth,
            AuthNeed::Required
        );
        assert_eq!(route(Method::GET, "/search/q").class, RouteClass::Search);
        let r = route(Method::GET, "/media/a/b.ts");
        assert_eq!(
            (r.class, r.rate, r.auth),
            (RouteClass::Media, Some(RateClass::Media), AuthNeed::Skip)
        );
        assert_eq!(route(Method::GET, "/healthz").class, RouteClass::Internal);
        assert_eq!(route(Method::GET, "/").class, RouteClass::Portal);
        assert_eq!(route(Method::GET, "/apix").class, RouteClass::Portal);
    }

    #[test]
    fn decisions_use_the_decoded_path() {
        // Encoded slashes cannot smuggle a private route past a public prefix.
        assert!(classify(&Method::GET, "/api/v1/auth%2F..%2Fme", &public()).is_err());
        assert_eq!(
            route(Method::GET, "/api%2Fv1%2Fme").auth,
            AuthNeed::Required
        );
        assert_eq!(
            route(Method::GET, "/api/v1/%63ampus").auth,
            AuthNeed::Optional
        );
        for bad in [
            "/media/../secrets",
            "/media/%2e%2e/x",
            "/a/./b",
            "/a\\b",
            "/x%00",
            "/%ff",
        ] {
            assert!(classify(&Method::GET, bad, &public()).is_err(), "{bad}");
        }
    }
}
