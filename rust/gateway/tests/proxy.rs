//! In-process integration tests: the gateway and small axum upstreams, all on
//! 127.0.0.1 with OS-assigned ports.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use axum::{
    extract::Request,
    http::HeaderValue,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use lmsd_gateway::Config;
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

// ---------------------------------------------------------------- helpers

/// A running gateway; dropping it without `stop` just abandons the task.
struct Gateway {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers graceful shutdown and waits for `run` to return.
    async fn stop(mut self) {
        let _ = self.shutdown.take().expect("not yet stopped").send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("gateway did not shut down in time")
            .expect("gateway task panicked")
            .expect("gateway returned an error");
    }
}

async fn start_gateway(upstreams: &[SocketAddr], tweak: impl FnOnce(&mut Config)) -> Gateway {
    let mut config = Config::new(
        upstreams
            .iter()
            .map(|addr| format!("http://{addr}").parse().unwrap())
            .collect(),
    );
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

/// Echoes the request as JSON, tagged with the upstream's `name`.
async fn echo(name: &'static str, request: Request) -> Response {
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
    let mut response = Json(json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response();
    let h = response.headers_mut();
    h.insert("x-upstream", HeaderValue::from_static(name));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("proxy-authenticate", HeaderValue::from_static("Basic"));
    response
}

/// Sleeps `?ms=N` milliseconds (default 3000), then answers.
async fn slow(request: Request) -> &'static str {
    let ms = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(3000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow done"
}

/// Starts an echo upstream and returns its address.
async fn start_upstream(name: &'static str) -> SocketAddr {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/slow", get(slow))
        .fallback(move |request: Request| echo(name, request));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An address nobody listens on (connection refused).
fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    response.json().await.unwrap()
}

// ---------------------------------------------------------------- health

#[tokio::test]
async fn healthz_answers_without_upstreams() {
    let gw = start_gateway(&[dead_addr()], |_| {}).await;
    let response = client().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"status":"ok","service":"lmsd-gateway","version":"0.1.0"}"#
    );
    gw.stop().await;
}

#[tokio::test]
async fn readyz_ready_with_one_live_upstream() {
    let live = start_upstream("a").await;
    let dead = dead_addr();
    let gw = start_gateway(&[dead, live], |_| {}).await;
    let response = client().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["upstreams"],
        json!([
            {"url": format!("http://{dead}"), "healthy": false},
            {"url": format!("http://{live}"), "healthy": true},
        ])
    );
    gw.stop().await;
}

#[tokio::test]
async fn readyz_unavailable_with_only_dead_upstream() {
    let gw = start_gateway(&[dead_addr()], |_| {}).await;
    let response = client().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["upstreams"][0]["healthy"], false);
    gw.stop().await;
}

// ---------------------------------------------------------------- proxying

#[tokio::test]
async fn proxies_get_with_path_query_and_headers() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |c| {
        // This test is about proxying, not tokens (see tests/auth.rs); the
        // loopback peer is a trusted proxy so its X-Forwarded-For is kept.
        c.public_routes = vec!["/api/*".parse().unwrap()];
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let response = client()
        .get(gw.url("/api/v1/courses/42?expand=lessons&x=%20y"))
        .header("x-custom", "hello")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "a");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/api/v1/courses/42");
    assert_eq!(body["query"], "expand=lessons&x=%20y");
    assert_eq!(body["body"], "");
    let headers = &body["headers"];
    assert_eq!(headers["x-custom"], "hello");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(headers["host"], up.to_string());
    gw.stop().await;
}

#[tokio::test]
async fn post_body_passes_through_both_ways() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |_| {}).await;
    let payload = "x".repeat(200_000);
    let response = client()
        .post(gw.url("/submit?draft=1"))
        .header("content-type", "text/plain")
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/submit");
    assert_eq!(body["headers"]["content-type"], "text/plain");
    assert_eq!(body["body"].as_str().unwrap(), payload);

    // Other methods keep their method.
    let response = client().delete(gw.url("/thing/1")).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method"], "DELETE");
    gw.stop().await;
}

#[tokio::test]
async fn round_robin_across_upstreams() {
    let a = start_upstream("a").await;
    let b = start_upstream("b").await;
    let gw = start_gateway(&[a, b], |_| {}).await;
    let client = client();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = client.get(gw.url("/rr")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        seen.push(
            response.headers()["x-upstream"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen, ["a", "b", "a", "b"]);
    gw.stop().await;
}

#[tokio::test]
async fn fails_over_from_a_dead_upstream_for_bodyless_requests() {
    let live = start_upstream("live").await;
    let gw = start_gateway(&[dead_addr(), live], |_| {}).await;
    let client = client();
    for _ in 0..4 {
        let response = client.get(gw.url("/page")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-upstream"], "live");
    }
    gw.stop().await;
}

#[tokio::test]
async fn request_with_body_is_not_retried() {
    // Round robin starts at the dead upstream; the body cannot be replayed -> 502.
    let live = start_upstream("live").await;
    let gw = start_gateway(&[dead_addr(), live], |_| {}).await;
    let client = client();
    let response = client.post(gw.url("/x")).body("data").send().await.unwrap();
    problem(response, 502).await;
    let response = client.post(gw.url("/x")).body("data").send().await.unwrap();
    assert_eq!(response.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn bad_gateway_problem_when_all_upstreams_dead() {
    let gw = start_gateway(&[dead_addr(), dead_addr()], |_| {}).await;
    let response = client().get(gw.url("/anything")).send().await.unwrap();
    let body = problem(response, 502).await;
    assert_eq!(
        body,
        json!({"type": "about:blank", "title": "Bad Gateway", "status": 502, "detail": "no upstream available"})
    );
    gw.stop().await;
}

#[tokio::test]
async fn gateway_timeout_problem() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |c| c.request_timeout_secs = 1).await;
    let response = client().get(gw.url("/slow?ms=5000")).send().await.unwrap();
    let body = problem(response, 504).await;
    assert_eq!(body["title"], "Gateway Timeout");
    gw.stop().await;
}

#[tokio::test]
async fn payload_too_large_by_content_length() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |c| c.max_body_bytes = 1024).await;
    let client = client();
    let response = client
        .post(gw.url("/upload"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    let body = problem(response, 413).await;
    assert_eq!(body["status"], 413);
    assert_eq!(
        body["detail"],
        "request body exceeds the limit of 1024 bytes"
    );

    // Exactly at the limit is fine.
    let response = client
        .post(gw.url("/upload"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn payload_too_large_when_chunked() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |c| c.max_body_bytes = 1024).await;
    let addr = gw.addr;
    let received = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let chunk = "y".repeat(1024);
        let request = format!(
            "POST /upload HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             400\r\n{chunk}\r\n1\r\nz\r\n0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received); // a reset after the response is fine
        received
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    gw.stop().await;
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn request_id_generated_and_preserved() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |_| {}).await;
    let client = client();

    let response = client.get(gw.url("/rid")).send().await.unwrap();
    let returned = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["headers"]["x-request-id"], returned.as_str());
    let uuid = uuid::Uuid::parse_str(&returned).expect("generated id is a UUID");
    assert_eq!(uuid.get_version_num(), 4);

    let response = client
        .get(gw.url("/rid"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["headers"]["x-request-id"], "abc-123");

    // Also on locally answered requests and errors.
    let response = client
        .get(gw.url("/healthz"))
        .header("x-request-id", "h-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "h-1");
    gw.stop().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |_| {}).await;
    let response = client()
        .get(gw.url("/hop"))
        .header("connection", "keep-alive, x-hop-custom")
        .header("x-hop-custom", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("x-end-to-end", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Response side: hop-by-hop headers from the upstream are dropped.
    assert!(response.headers().get("keep-alive").is_none());
    assert!(response.headers().get("proxy-authenticate").is_none());
    assert_eq!(response.headers()["x-upstream"], "a");
    // Request side.
    let body: Value = response.json().await.unwrap();
    let headers = body["headers"].as_object().unwrap();
    for name in [
        "x-hop-custom",
        "keep-alive",
        "proxy-authorization",
        "te",
        "transfer-encoding",
    ] {
        assert!(!headers.contains_key(name), "{name} leaked: {headers:?}");
    }
    assert_eq!(headers["x-end-to-end"], "kept");
    gw.stop().await;
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |_| {}).await;
    let url = gw.url("/slow?ms=500");
    let in_flight = tokio::spawn(async move { client().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    gw.stop().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slow done");
}

#[tokio::test]
async fn head_and_options_are_proxied() {
    let up = start_upstream("a").await;
    let gw = start_gateway(&[up], |_| {}).await;
    let response = client().head(gw.url("/doc")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "a");
    let response = client()
        .request(reqwest::Method::OPTIONS, gw.url("/doc"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method"], "OPTIONS");
    gw.stop().await;
}
