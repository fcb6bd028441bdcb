//! Access-token verification: the API's EdDSA JWTs, checked locally with keys
//! from its JWKS ([`jwks`]), results cached per token ([`cache`]).
//!
//! A verified identity travels upstream as `X-Lmsd-User`, `X-Lmsd-Campus` and
//! `X-Lmsd-Role`. Every client-sent `X-Lmsd-*` header is removed first (see
//! [`strip_identity_headers`]), so upstreams can trust those names.

mod cache;
pub mod jwks;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use jsonwebtoken::{errors::ErrorKind, Algorithm, Validation};
use serde::Deserialize;
use uuid::Uuid;

use crate::{config::Config, error::AppError, proxy::HttpClient};

/// The portal's session cookie, which carries the same access token.
pub const SESSION_COOKIE: &str = "lmsd_session";
/// Prefix of the identity headers only the gateway may set.
pub const IDENTITY_PREFIX: &str = "x-lmsd-";
/// Verified user id (UUID).
pub static X_LMSD_USER: HeaderName = HeaderName::from_static("x-lmsd-user");
/// Verified campus id.
pub static X_LMSD_CAMPUS: HeaderName = HeaderName::from_static("x-lmsd-campus");
/// Verified role (`learner`, `instructor`, `admin`).
pub static X_LMSD_ROLE: HeaderName = HeaderName::from_static("x-lmsd-role");
/// The client address the gateway resolved (after trusted proxies).
pub static X_LMSD_CLIENT_IP: HeaderName = HeaderName::from_static("x-lmsd-client-ip");

/// Roles the API issues.
const ROLES: [&str; 3] = ["learner", "instructor", "admin"];
/// Tokens longer than this are refused without parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A verified identity, ready to be copied into upstream headers.
#[derive(Debug)]
pub struct Identity {
    pub user_id: Uuid,
    pub user: HeaderValue,
    pub campus: HeaderValue,
    pub role: HeaderValue,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// JWKS generation the token was verified against.
    generation: u64,
}

impl Identity {
    /// Adds the identity headers to `headers` (after incoming ones were stripped).
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(X_LMSD_USER.clone(), self.user.clone());
        headers.insert(X_LMSD_CAMPUS.clone(), self.campus.clone());
        headers.insert(X_LMSD_ROLE.clone(), self.role.clone());
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    campus: String,
    role: String,
    exp: u64,
}

/// Verifies tokens and remembers the ones that verified.
#[derive(Debug)]
pub struct Authenticator {
    jwks: jwks::Jwks,
    cache: cache::TokenCache,
    validation: Validation,
}

impl Authenticator {
    /// An authenticator for `config`, fetching keys through `client` from the
    /// configured JWKS URL, or else from each API upstream.
    pub fn new(config: &Config, client: HttpClient) -> Self {
        let sources: Vec<Uri> = match &config.jwks_url {
            Some(url) => url.uri_for("").into_iter().collect(),
            None => config
                .upstreams
                .iter()
                .filter_map(|u| u.uri_for("/api/v1/auth/jwks.json").ok())
                .collect(),
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.set_audience(&[&config.jwt_audience]);
        let mut required = vec!["exp", "sub", "aud"];
        if let Some(issuer) = &config.jwt_issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Self {
            jwks: jwks::Jwks::new(client, sources),
            cache: cache::TokenCache::default(),
            validation,
        }
    }

    /// The key cache (for the background refresh).
    pub fn jwks(&self) -> &jwks::Jwks {
        &self.jwks
    }

    /// Verifies `token`; errors are client-safe 401s (or 503 without any keys).
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, AppError> {
        let now = unix_now();
        if let Some(identity) = self.cache.get(token, now, self.jwks.generation()) {
            return Ok(identity);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AppError::Unauthorized("invalid access token"));
        }
        // `decode_header` refuses `alg: none` (not an algorithm it knows); anything
        // other than EdDSA is refused here before a key is even looked up.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AppError::Unauthorized("malformed access token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AppError::Unauthorized("invalid access token"));
        }
        let kid = header
            .kid
            .ok_or(AppError::Unauthorized("invalid access token"))?;
        let (key, generation) = self.jwks.key(&kid).await.map_err(|err| match err {
            jwks::KeyError::Unknown => AppError::Unauthorized("invalid access token"),
            jwks::KeyError::Unavailable => AppError::Unavailable,
        })?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|err| {
                tracing::debug!(error = %err, "token rejected");
                match err.kind() {
                    ErrorKind::ExpiredSignature => AppError::Unauthorized("access token expired"),
                    _ => AppError::Unauthorized("invalid access token"),
                }
            })?;
        let identity = Arc::new(identity_of(data.claims, generation)?);
        self.cache.insert(token, identity.clone(), now);
        Ok(identity)
    }
}

fn identity_of(claims: Claims, generation: u64) -> Result<Identity, AppError> {
    let invalid = || AppError::Unauthorized("invalid access token");
    let user_id = Uuid::parse_str(&claims.sub).map_err(|_| invalid())?;
    if !ROLES.contains(&claims.role.as_str()) {
        return Err(invalid());
    }
    Ok(Identity {
        user_id,
        user: HeaderValue::from_str(&user_id.to_string()).map_err(|_| invalid())?,
        campus: HeaderValue::from_str(&claims.campus).map_err(|_| invalid())?,
        role: HeaderValue::from_str(&claims.role).map_err(|_| invalid())?,
        exp: claims.exp,
        generation,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The access token of a request: `Authorization: Bearer …`, else the session cookie.
pub fn token_from(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|t| !t.is_empty())
}

/// Removes every `X-Lmsd-*` header a client sent.
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(IDENTITY_PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn finds_the_token() {
        assert_eq!(
            token_from(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            token_from(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(
            token_from(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            token_from(&headers(&[("cookie", "a=1; lmsd_session=tok; b=2")])),
            Some("tok")
        );
        assert_eq!(token_from(&headers(&[("cookie", "lmsd_session=")])), None);
        assert_eq!(token_from(&headers(&[])), None);
    }

    #[test]
    fn strips_forged_identity() {
        let mut h = headers(&[
            ("X-Lmsd-User", "evil"),
            ("x-lmsd-role", "admin"),
            ("x-lmsd-anything", "1"),
            ("x-other", "kept"),
        ]);
        strip_identity_headers(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-other"], "kept");
    }

    #[test]
    fn identity_needs_uuid_and_known_role() {
        let claims = |sub: &str, role: &str| Claims {
            sub: sub.into(),
            campus: "c".into(),
            role: role.into(),
            exp: 1,
        };
        let id = Uuid::new_v4().to_string();
        assert!(identity_of(claims(&id, "learner"), 0).is_ok());
        assert!(identity_of(claims("root", "learner"), 0).is_err());
        assert!(identity_of(claims(&id, "superuser"), 0).is_err());
    }
}
