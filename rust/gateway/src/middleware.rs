//! The request pipeline: what every request goes through, in order, as one
//! async function per request ([`handle`]) instead of a stack of tower layers
//! (each layer boxed its future and cloned state per request).
//!
//! 1. Request id: keeps a well-formed incoming `X-Request-Id` or generates a
//!    UUIDv4 one, forwards it upstream and returns it on the response.
//! 2. Classification ([`classify`]): 400 for paths that are not in normal form.
//! 3. The gate: resolves the client address, strips forged `X-Lmsd-*`
//!    headers, verifies the access token, spends the rate budget.
//! 4. Dispatch: `/healthz`, `/readyz`, `/metrics` are answered here; media
//!    from disk; everything else is proxied to its pool.
//! 5. The access log line and the metrics, once the response head is ready.

use std::{
    cell::Cell,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use axum::{
    body::Body,
    http::{header, HeaderName, HeaderValue, Method},
    response::{IntoResponse, Response},
};
use hyper::body::Incoming;
use uuid::Uuid;

use crate::{
    accesslog,
    auth::{strip_identity_headers, token_from, Identity, X_LMSD_CLIENT_IP},
    error::AppError,
    health,
    proxy::{ip_header, ClientInfo},
    ratelimit::{Allowed, ClientKey},
    routes::{classify, AuthNeed, RateClass, Route, RouteClass},
    AppState,
};

/// The request-id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");

/// Longest incoming request id that is kept as-is.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What the server knows about a connection, computed once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The socket peer.
    pub addr: SocketAddr,
    /// Its IP as a header value (`X-Lmsd-Client-Ip`, `X-Forwarded-For`).
    pub ip_header: HeaderValue,
}

impl Peer {
    /// Connection facts for a client connected from `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ip_header: ip_header(addr.ip()),
        }
    }
}

/// An incoming id is kept when it is 1..=128 visible ASCII characters.
fn is_acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A random (version 4) UUID from a per-thread generator seeded by the OS, so
/// that ids cost no system call. Request ids are labels, not secrets.
fn new_request_id() -> HeaderValue {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(Uuid::new_v4().as_u64_pair().0 | 1);
    }
    // wyrand: two 64-bit outputs per id.
    let next = || {
        STATE.with(|state| {
            let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
            state.set(s);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            ((t >> 64) ^ t) as u64
        })
    };
    let bytes = (u128::from(next()) << 64 | u128::from(next())).to_le_bytes();
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = Uuid::encode_buffer();
    let id = uuid.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

/// Who made a request, for the access log.
#[derive(Debug, Clone, Copy, Default)]
struct Access {
    client: Option<IpAddr>,
    user: Option<Uuid>,
}

/// Serves one request received on a connection from `peer`.
pub async fn handle(state: AppState, peer: &Peer, mut request: hyper::Request<Incoming>) -> Response {
    let started = Instant::now();
    let id = match request.headers().get(&X_REQUEST_ID) {
        Some(value) if is_acceptable_request_id(value) => value.clone(),
        _ => {
            let id = new_request_id();
            request.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    };
    let log = accesslog::enabled();
    // Cheap clones (shared bytes), kept for the log line after the request moved on.
    let logged = log.then(|| (request.method().clone(), request.uri().clone()));
    let route = classify(
        request.method(),
        request.uri().path(),
        &state.config().public_routes,
    );
    let (mut response, class, access) = match route {
        Ok(route) => {
            let (response, access) = gate(&state, route, peer, request).await;
            (response, route.class, access)
        }
        Err(err) => (err.into_response(), RouteClass::Portal, Access::default()),
    };
    let latency = started.elapsed();
    let status = response.status().as_u16();
    state.metrics().observe(class, status, latency);
    if let Some((method, uri)) = &logged {
        accesslog::log(&accesslog::Entry {
            method,
            path: uri.path(),
            status,
            latency,
            route: class.as_str(),
            client: access.client,
            user: access.user,
            request_id: id.to_str().unwrap_or_default(),
        });
    }
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

/// Authentication and rate limiting for a classified request, then dispatch.
async fn gate(
    state: &AppState,
    route: Route,
    peer: &Peer,
    mut request: hyper::Request<Incoming>,
) -> (Response, Access) {
    let peer_ip = peer.addr.ip();
    let trusted = state.trusted_proxies();
    let trusted_peer = trusted.trusts(peer_ip);
    let client = if trusted_peer {
        trusted.client_ip(peer_ip, request.headers())
    } else {
        peer_ip
    };
    let info = ClientInfo {
        peer: peer_ip,
        client,
        trusted_peer,
    };
    let mut access = Access {
        client: Some(client),
        user: None,
    };

    let headers = request.headers_mut();
    strip_identity_headers(headers);
    let client_header = if client == peer_ip {
        peer.ip_header.clone()
    } else {
        ip_header(client)
    };
    headers.insert(X_LMSD_CLIENT_IP.clone(), client_header);

    let mut identity: Option<Arc<Identity>> = None;
    if route.auth != AuthNeed::Skip {
        let verified = match token_from(request.headers()) {
            Some(token) => Some(state.auth().verify(token).await),
            None => None,
        };
        match (verified, route.auth) {
            (Some(Ok(id)), _) => identity = Some(id),
            (Some(Err(err)), AuthNeed::Required) => {
                return (refuse(state, route, client, err), access)
            }
            (None, AuthNeed::Required) => {
                let err = AppError::Unauthorized("missing access token");
                return (refuse(state, route, client, err), access);
            }
            // Public route: a missing or stale token just means anonymous.
            _ => {}
        }
    }
    if let Some(id) = &identity {
        id.apply(request.headers_mut());
        access.user = Some(id.user_id);
    }

    let mut allowed: Option<Allowed> = None;
    if let Some(class) = route.rate {
        let key = match (&identity, class) {
            (Some(id), c) if c != RateClass::Login => ClientKey::User(id.user_id),
            _ => ClientKey::Ip(client),
        };
        let mut checked = state.limiters().check(class, &key);
        if let (Ok(_), Some(shared)) = (&checked, state.shared_limiter()) {
            // The local limiter first: a flood is refused without a NATS round trip.
            if let Err(err) = shared.check(class, &key).await {
                checked = Err(err);
            }
        }
        match checked {
            Ok(a) => allowed = a,
            Err(err) => {
                state.metrics().limited(class);
                return (err.into_response(), access);
            }
        }
    }

    let mut response = match dispatch(state, route.class, info, peer, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    if let Some(allowed) = allowed {
        let h = response.headers_mut();
        h.insert(RATELIMIT_LIMIT.clone(), allowed.limit.into());
        h.insert(RATELIMIT_REMAINING.clone(), allowed.remaining.into());
    }
    (response, access)
}

/// Answers 401 — unless the client's IP budget is spent, so that floods of bad
/// tokens are throttled like any other traffic.
fn refuse(state: &AppState, route: Route, client: IpAddr, err: AppError) -> Response {
    if let Some(class) = route.rate {
        if let Err(limited) = state.limiters().check(class, &ClientKey::Ip(client)) {
            state.metrics().limited(class);
            return limited.into_response();
        }
    }
    state.metrics().auth_failure();
    err.into_response()
}

/// Sends a request to the backend of its route class.
async fn dispatch(
    state: &AppState,
    class: RouteClass,
    info: ClientInfo,
    peer: &Peer,
    request: hyper::Request<Incoming>,
) -> Result<Response, AppError> {
    let proxy = state.proxy();
    let metrics = state.metrics();
    let own = (info.peer == peer.addr.ip()).then_some(&peer.ip_header);
    match class {
        RouteClass::Media => state.media().serve(request.map(Body::new)).await,
        RouteClass::Api => {
            proxy
                .forward(&proxy.api, request, Some(info), own, metrics)
                .await
        }
        RouteClass::Search => {
            proxy
                .forward(&proxy.search, request, Some(info), own, metrics)
                .await
        }
        // The raw path must be exactly the endpoint's (classification decodes it);
        // anything else that classified as internal goes to the portal.
        RouteClass::Internal => match internal(state, info, &request).await {
            Some(response) => Ok(response),
            None => {
                proxy
                    .forward(&proxy.portal, request, Some(info), own, metrics)
                    .await
            }
        },
        RouteClass::Portal => {
            proxy
                .forward(&proxy.portal, request, Some(info), own, metrics)
                .await
        }
    }
}

/// `/healthz`, `/readyz` and `/metrics` (GET and HEAD; other methods get 405).
async fn internal(
    state: &AppState,
    info: ClientInfo,
    request: &hyper::Request<Incoming>,
) -> Option<Response> {
    let path = request.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return None;
    }
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = AppError::MethodNotAllowed.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return Some(response);
    }
    let response = match path {
        "/healthz" => health::healthz().await.into_response(),
        "/readyz" => health::readyz(state).await,
        _ => health::metrics(state, info.client),
    };
    Some(if method == Method::HEAD {
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, Body::empty())
    } else {
        response
    })
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
