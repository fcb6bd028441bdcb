//! Rate limiting: one client's flood does not stop another client; budgets are
//! per route class; `X-Forwarded-For` only counts from trusted proxies.

mod common;

use common::*;

/// Sends `n` GETs to `path` with the given X-Forwarded-For (if any) and bearer token (if any);
/// returns the status codes.
async fn burst(
    gw: &Gateway,
    path: &str,
    n: usize,
    xff: Option<&str>,
    bearer: Option<&str>,
) -> Vec<u16> {
    let c = client();
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        let mut request = c.get(gw.url(path));
        if let Some(xff) = xff {
            request = request.header("x-forwarded-for", xff);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn a_flood_from_one_client_leaves_another_unaffected() {
    let stub = start_stub(StubKeys::with(&[("a", KEY_A_X)])).await;
    let gw = start_gateway(&[stub], |c| {
        c.rate_read = "1/m:5".parse().unwrap();
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // 10.0.0.1 floods; after its burst of 5 it gets 429s.
    let flood = burst(&gw, "/page", 20, Some("10.0.0.1"), None).await;
    assert_eq!(flood.iter().filter(|s| **s == 200).count(), 5, "{flood:?}");
    assert!(flood[5..].iter().all(|s| *s == 429));
    // 10.0.0.2 behind the same proxy still has its whole budget.
    assert_eq!(
        burst(&gw, "/page", 5, Some("10.0.0.2"), None).await,
        [200; 5]
    );

    let response = client()
        .get(gw.url("/page"))
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(response.headers()["ratelimit-limit"], "5");
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    assert_eq!(response.headers()["ratelimit-policy"], "5;w=60");
    let body = problem(response, 429).await;
    assert!(body["detail"].as_str().unwrap().contains("read"));

    // Writes have their own budget.
    let response = client()
        .post(gw.url("/form"))
        .header("x-forwarded-for", "10.0.0.1")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Limited requests are counted.
    let metrics = client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lmsd_gateway_rate_limited_total{class=\"read\"} 16\n"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn signed_in_users_have_their_own_budgets_whatever_their_address() {
    let stub = start_stub(StubKeys::with(&[("a", KEY_A_X)])).await;
    let gw = start_gateway(&[stub], |c| c.rate_read = "1/m:3".parse().unwrap()).await;
    let (t1, t2) = (token(USER_1), token(USER_2));
    let flood = burst(&gw, "/api/v1/me", 6, None, Some(&t1)).await;
    assert_eq!(flood, [200, 200, 200, 429, 429, 429]);
    // Same address, another user: unaffected (a classroom behind one NAT).
    assert_eq!(burst(&gw, "/api/v1/me", 3, None, Some(&t2)).await, [200; 3]);
    gw.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_cannot_buy_a_fresh_budget() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |c| c.rate_read = "1/m:3".parse().unwrap()).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.extend(burst(&gw, "/page", 1, Some(&format!("10.9.9.{i}")), None).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    gw.stop().await;
}

#[tokio::test]
async fn login_budget_is_per_ip_and_separate_and_bad_tokens_spend_the_ip_budget() {
    let stub = start_stub(StubKeys::with(&[("a", KEY_A_X)])).await;
    let gw = start_gateway(&[stub], |c| {
        c.rate_login = "2/m".parse().unwrap();
        c.rate_read = "1/m:4".parse().unwrap();
    })
    .await;
    let c = client();
    let mut logins = Vec::new();
    for _ in 0..4 {
        let response = c
            .post(gw.url("/api/v1/auth/login"))
            .bearer_auth(token(USER_1))
            .body("{}")
            .send()
            .await
            .unwrap();
        logins.push(response.status().as_u16());
    }
    // Keyed by IP even with a valid token: sign-in guessing cannot hide behind accounts.
    assert_eq!(logins, [200, 200, 429, 429]);
    // Reads still work.
    assert_eq!(burst(&gw, "/page", 1, None, None).await, [200]);
    // A flood of bad tokens turns from 401 into 429 once the address's budget is spent.
    let bad = burst(&gw, "/api/v1/me", 5, None, Some("garbage")).await;
    assert_eq!(bad, [401, 401, 401, 429, 429]);
    gw.stop().await;
}

#[tokio::test]
async fn metrics_are_only_for_allowed_clients() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |c| {
        c.metrics_allow = vec!["10.0.0.0/8".parse().unwrap()]
    })
    .await;
    let response = client().get(gw.url("/metrics")).send().await.unwrap();
    problem(response, 404).await;
    gw.stop().await;

    let gw = start_gateway(&[stub], |_| {}).await;
    client().get(gw.url("/x")).send().await.unwrap();
    let response = client().get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert!(
        text.contains("lmsd_gateway_requests_total{route=\"portal\",status=\"2xx\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("lmsd_gateway_request_duration_seconds_count{route=\"portal\"} 1\n"));
    assert!(text.contains("# TYPE lmsd_gateway_upstream_errors_total counter"));
    gw.stop().await;
}
