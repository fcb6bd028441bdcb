//! Connection-level behaviour: oversized and slow request heads, raw paths that
//! HTTP clients would normalise away, protocol upgrades, server-sent events and
//! passive upstream health.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Sends `raw` on a fresh connection and returns everything read until the
/// server closes or `wait` passes.
async fn raw_exchange(gw: &Gateway, raw: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |c| c.max_header_bytes = 8192).await;
    let big = "x".repeat(20_000);
    let raw = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let response = raw_exchange(&gw, raw.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), "431", "{response}");
    // Normal requests are fine.
    assert_eq!(
        client().get(gw.url("/")).send().await.unwrap().status(),
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_while_others_are_served() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |c| c.header_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Dribble: ")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile another client is served at once.
    assert_eq!(
        client().get(gw.url("/")).send().await.unwrap().status(),
        200
    );
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the slow connection was not closed");
    assert!(started.elapsed() < Duration::from_secs(4));
    gw.stop().await;
}

#[tokio::test]
async fn dot_segments_in_raw_paths_are_refused() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |_| {}).await;
    for path in [
        "/api/v1/auth/../me",
        "/api/v1/auth/%2e%2e/me",
        "/media/%2E%2E/secrets/secrets.toml",
        "/a/%2e/b",
        "/x%5c..%5cy",
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = raw_exchange(&gw, raw.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(status_of(&response), "400", "{path}: {response}");
        assert!(response.contains("application/problem+json"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn upgrades_are_tunnelled() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |_| {}).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: echo"),
        "{head}"
    );
    for message in [&b"ping"[..], b"second message"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message);
    }
    gw.stop().await;
}

#[tokio::test]
async fn server_sent_events_stream_without_buffering() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |_| {}).await;
    let started = Instant::now();
    let mut response = client().get(gw.url("/sse")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "first event was held back"
    );
    let second = response.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"data: two\n\n");
    gw.stop().await;
}

#[tokio::test]
async fn a_failing_upstream_is_taken_out_then_retried() {
    let live = start_stub(StubKeys::default()).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = start_gateway(&[dead, live], |c| c.fail_timeout_secs = 1).await;
    for _ in 0..10 {
        assert_eq!(
            client().get(gw.url("/")).send().await.unwrap().status(),
            200
        );
    }
    let metrics = || async {
        client()
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // One refused connection took it out; the other nine requests never tried it.
    assert!(metrics()
        .await
        .contains("lmsd_gateway_upstream_errors_total{pool=\"portal\",kind=\"connect\"} 1\n"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..4 {
        assert_eq!(
            client().get(gw.url("/")).send().await.unwrap().status(),
            200
        );
    }
    // After fail_timeout it was retried once (and failed again).
    assert!(metrics()
        .await
        .contains("lmsd_gateway_upstream_errors_total{pool=\"portal\",kind=\"connect\"} 2\n"));
    gw.stop().await;
}

#[tokio::test]
async fn search_routes_go_to_the_search_service_or_404() {
    let api = start_stub(StubKeys::with(&[("a", KEY_A_X)])).await;
    let gw = start_gateway(&[api], |_| {}).await;
    let response = client()
        .get(gw.url("/search/q?x=1"))
        .bearer_auth(token(USER_1))
        .send()
        .await
        .unwrap();
    problem(response, 404).await;
    gw.stop().await;

    let search = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[api], |c| {
        c.search_upstreams = vec![format!("http://{search}").parse().unwrap()]
    })
    .await;
    problem(client().get(gw.url("/search/q")).send().await.unwrap(), 401).await;
    let response = client()
        .get(gw.url("/search/q"))
        .bearer_auth(token(USER_1))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/search/q");
    assert_eq!(body["headers"]["x-lmsd-user"], USER_1);
    gw.stop().await;
}
