//! The API's public signing keys (JWKS), fetched over HTTP and cached.
//!
//! Keys are fetched lazily on the first token, again whenever a token names an
//! unknown `kid` (a rotation needs no restart), and in the background every
//! `jwks_refresh_secs` so that removed keys stop verifying. Unknown-`kid`
//! refreshes are spaced at least [`MIN_REFRESH_INTERVAL`] apart, so tokens with
//! made-up key ids cannot turn the gateway into a load generator for the API.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{Request, Uri},
};
use http_body_util::{BodyExt, Limited};
use jsonwebtoken::{jwk::Jwk, DecodingKey};
use serde_json::Value;
use tokio::time::Instant;

use crate::proxy::HttpClient;

/// Smallest gap between two fetches caused by unknown key ids: at most one
/// JWKS request per second reaches the API, however many made-up `kid`s arrive,
/// while a real rotation is picked up within a second.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Time allowed for one JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why no key could be found for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The key set is known and does not have this `kid`.
    Unknown,
    /// The key set could never be fetched.
    Unavailable,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// The keys' JSON by kid: two fetches with the same fingerprint are the same set.
    fingerprint: BTreeMap<String, String>,
}

/// The cached key set and how to refresh it.
pub struct Jwks {
    client: HttpClient,
    sources: Vec<Uri>,
    current: RwLock<Arc<KeySet>>,
    generation: AtomicU64,
    /// Serialises fetches; holds when the last one started.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("sources", &self.sources)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// A key cache that fetches from the first of `sources` that answers.
    pub fn new(client: HttpClient, sources: Vec<Uri>) -> Self {
        Self {
            client,
            sources,
            current: RwLock::new(Arc::default()),
            generation: AtomicU64::new(0),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// Changes whenever the set of keys changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn lookup(&self, kid: &str) -> Option<(Arc<DecodingKey>, u64)> {
        let generation = self.generation();
        let set = self.current.read().unwrap_or_else(|e| e.into_inner());
        set.keys.get(kid).map(|key| (key.clone(), generation))
    }

    fn is_empty(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .is_empty()
    }

    /// The key for `kid` and the generation it belongs to, refreshing once if it is unknown.
    pub async fn key(&self, kid: &str) -> Result<(Arc<DecodingKey>, u64), KeyError> {
        if let Some(found) = self.lookup(kid) {
            return Ok(found);
        }
        let mut last = self.last_fetch.lock().await;
        // Whoever held the lock before us may just have fetched it.
        if let Some(found) = self.lookup(kid) {
            return Ok(found);
        }
        let recent = last.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
        if !recent {
            *last = Some(Instant::now());
            if let Err(err) = self.fetch_and_install().await {
                tracing::warn!(error = %err, "cannot fetch the JWKS");
            }
        }
        drop(last);
        self.lookup(kid).ok_or(if self.is_empty() {
            KeyError::Unavailable
        } else {
            KeyError::Unknown
        })
    }

    /// Fetches the key set now (the background refresh); returns how many keys it has.
    pub async fn refresh(&self) -> Result<usize, String> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_install().await
    }

    async fn fetch_and_install(&self) -> Result<usize, String> {
        let mut failures = Vec::new();
        for source in &self.sources {
            match tokio::time::timeout(FETCH_TIMEOUT, self.fetch(source)).await {
                Ok(Ok(set)) => return Ok(self.install(set)),
                Ok(Err(err)) => failures.push(format!("{source}: {err}")),
                Err(_) => failures.push(format!("{source}: timed out")),
            }
        }
        Err(failures.join("; "))
    }

    async fn fetch(&self, source: &Uri) -> Result<KeySet, String> {
        let request = Request::get(source.clone())
            .header("accept", "application/json")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        parse(&body)
    }

    fn install(&self, set: KeySet) -> usize {
        let count = set.keys.len();
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.fingerprint != set.fingerprint {
            *current = Arc::new(set);
            self.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(keys = count, "JWKS loaded");
        }
        count
    }
}

/// Parses a JWKS document, keeping the Ed25519 keys that have a `kid`.
fn parse(body: &[u8]) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut set = KeySet::default();
    for raw in keys {
        let kid = raw.get("kid").and_then(Value::as_str);
        let okp = raw.get("kty").and_then(Value::as_str) == Some("OKP")
            && raw.get("crv").and_then(Value::as_str) == Some("Ed25519");
        let alg_ok = raw
            .get("alg")
            .and_then(Value::as_str)
            .is_none_or(|alg| alg == "EdDSA");
        let (Some(kid), true, true) = (kid, okp, alg_ok) else {
            tracing::debug!("skipping a JWKS entry that is not an Ed25519 key with a kid");
            continue;
        };
        let key = serde_json::from_value::<Jwk>(raw.clone())
            .map_err(|e| e.to_string())
            .and_then(|jwk| DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string()));
        match key {
            Ok(key) => {
                set.fingerprint.insert(kid.to_owned(), raw.to_string());
                set.keys.insert(kid.to_owned(), Arc::new(key));
            }
            Err(err) => tracing::warn!(kid, error = %err, "skipping an unusable JWKS key"),
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ed25519_keys_only() {
        let body = br#"{"keys":[
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a","alg":"EdDSA"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"h","alg":"HS256"}
        ]}"#;
        let set = parse(body).unwrap();
        assert_eq!(set.keys.keys().collect::<Vec<_>>(), ["a"]);
        assert!(parse(b"[]").is_err());
        assert!(parse(b"nope").is_err());
    }
}
