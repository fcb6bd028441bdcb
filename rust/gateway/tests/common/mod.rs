//! Shared helpers for the in-process gateway tests: a gateway on a random
//! port, a stub API (echo, JWKS with rotatable keys, SSE, WebSocket-style
//! upgrade) and token minting with test Ed25519 keys.
#![allow(dead_code)] // each test file uses a different subset

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lmsd_gateway::Config;
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const ISSUER: &str = "http://lms.test";
pub const KEY_A_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGv+Sculn1NKzd531nwmr+fW7sZsyY0JpMjogqvT9MT4\n-----END PRIVATE KEY-----\n";
pub const KEY_A_X: &str = "jgk6o7bZVJTeVHenIEmHcBZZubQaXll0fonC58cnLrg";
pub const KEY_B_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDDIUuoaJbxNfJ4KGOphICVs5ly312Zk3sA8j/V4uXOX\n-----END PRIVATE KEY-----\n";
pub const KEY_B_X: &str = "ME4Av-sXXRCepe9DsOKe_4CPxEDYpl9alo1wWnPClk8";
pub const USER_1: &str = "6f0b4a8e-49d4-4a43-9b39-4d6f7f3f0a01";
pub const USER_2: &str = "6f0b4a8e-49d4-4a43-9b39-4d6f7f3f0a02";
pub const CAMPUS: &str = "0d6c54f1-8f1e-4c0b-9a59-1f0c9a6b0c11";

// ---------------------------------------------------------------- gateway

/// A running gateway; dropping it without `stop` just abandons the task.
pub struct Gateway {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers graceful shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().expect("not yet stopped").send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("gateway did not shut down in time")
            .expect("gateway task panicked")
            .expect("gateway returned an error");
    }
}

/// A config for `upstreams` with the test issuer.
pub fn config(upstreams: &[SocketAddr]) -> Config {
    let mut config = Config::new(
        upstreams
            .iter()
            .map(|a| format!("http://{a}").parse().unwrap())
            .collect(),
    );
    config.jwt_issuer = Some(ISSUER.to_owned());
    config
}

pub async fn start_gateway(upstreams: &[SocketAddr], tweak: impl FnOnce(&mut Config)) -> Gateway {
    let mut config = config(upstreams);
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(lmsd_gateway::run(listener, config, async {
        let _ = rx.await;
    }));
    Gateway {
        addr,
        shutdown: Some(tx),
        task,
    }
}

// ---------------------------------------------------------------- stub API

/// Keys published by the stub's JWKS (kid → x), and how often it was fetched.
#[derive(Clone, Default)]
pub struct StubKeys {
    keys: Arc<Mutex<Vec<(String, String)>>>,
    pub fetches: Arc<AtomicUsize>,
}

impl StubKeys {
    pub fn with(keys: &[(&str, &str)]) -> Self {
        let stub = Self::default();
        stub.set(keys);
        stub
    }

    pub fn set(&self, keys: &[(&str, &str)]) {
        *self.keys.lock().unwrap() = keys
            .iter()
            .map(|(k, x)| ((*k).to_owned(), (*x).to_owned()))
            .collect();
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn jwks(State(keys): State<StubKeys>) -> Json<Value> {
    keys.fetches.fetch_add(1, Ordering::SeqCst);
    let list: Vec<Value> = keys
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|(kid, x)| json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}))
        .collect();
    Json(json!({ "keys": list }))
}

/// Echoes the request as JSON.
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or("<binary>").to_owned(),
            )
        })
        .collect();
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

/// Two server-sent events 300 ms apart.
async fn sse() -> Response {
    let stream = async_stream(vec![
        (Duration::ZERO, "data: one\n\n"),
        (Duration::from_millis(300), "data: two\n\n"),
    ]);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn async_stream(
    events: Vec<(Duration, &'static str)>,
) -> impl futures_core::Stream<Item = Result<&'static str, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for (delay, event) in events {
            tokio::time::sleep(delay).await;
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream(rx)
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// Accepts an `Upgrade: echo` handshake and echoes raw bytes afterwards.
async fn upgrade(mut request: Request) -> Response {
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let (mut r, mut w) = tokio::io::split(&mut io);
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "echo")
        .body(Body::empty())
        .unwrap()
}

/// Starts the stub API and returns its address.
pub async fn start_stub(keys: StubKeys) -> SocketAddr {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/auth/jwks.json", get(jwks))
        .route("/sse", get(sse))
        .route("/ws", get(upgrade))
        .fallback(echo)
        .with_state(keys);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------- tokens

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Standard claims for `user`, valid for 15 minutes.
pub fn claims(user: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": "lmsd", "sub": user, "campus": CAMPUS, "role": "learner",
        "email": "u@test.example", "name": "U", "iat": now(), "exp": now() + 900, "jti": "j",
    })
}

/// Signs `claims` with an Ed25519 PEM key under `kid`.
pub fn sign(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    use base64::Engine;
    let der: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

/// A valid token for `user` signed with key A.
pub fn token(user: &str) -> String {
    sign(KEY_A_PEM, "a", &claims(user))
}

// ---------------------------------------------------------------- client

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lmsd-gw-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
