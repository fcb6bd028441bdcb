//! Authentication through the gateway: verified identities reach the upstream
//! in headers clients cannot forge; bad tokens get 401 on protected routes.

mod common;

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::*;
use serde_json::{json, Value};

async fn setup() -> (Gateway, StubKeys) {
    let keys = StubKeys::with(&[("a", KEY_A_X)]);
    let stub = start_stub(keys.clone()).await;
    (start_gateway(&[stub], |_| {}).await, keys)
}

#[tokio::test]
async fn verified_identity_reaches_the_upstream_and_forgeries_do_not() {
    let (gw, _) = setup().await;
    let response = client()
        .get(gw.url("/api/v1/me"))
        .bearer_auth(token(USER_1))
        .header("x-lmsd-user", "00000000-0000-0000-0000-000000000000")
        .header("X-Lmsd-Role", "admin")
        .header("x-lmsd-impersonate", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["ratelimit-limit"], "200");
    let body: Value = response.json().await.unwrap();
    let h = &body["headers"];
    assert_eq!(h["x-lmsd-user"], USER_1);
    assert_eq!(h["x-lmsd-campus"], CAMPUS);
    assert_eq!(h["x-lmsd-role"], "learner");
    assert_eq!(h["x-lmsd-client-ip"], "127.0.0.1");
    assert!(h.get("x-lmsd-impersonate").is_none());
    // The token still travels, so the API can check it again.
    assert!(h["authorization"].as_str().unwrap().starts_with("Bearer "));

    // The portal's cookie carries the same token.
    let response = client()
        .get(gw.url("/api/v1/me"))
        .header(
            "cookie",
            format!("theme=dark; lmsd_session={}", token(USER_2)),
        )
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["headers"]["x-lmsd-user"], USER_2);

    // Public routes pass anonymous requests, still without forged identity.
    for path in ["/api/v1/campus", "/", "/login"] {
        let response = client()
            .get(gw.url(path))
            .header("x-lmsd-user", USER_1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["headers"].get("x-lmsd-user").is_none(),
            "{path}: {body}"
        );
    }
    // A stale token on a public route is ignored, not refused.
    let expired = sign(
        KEY_A_PEM,
        "a",
        &json!({"sub": USER_1, "aud": "lmsd", "iss": ISSUER, "campus": CAMPUS, "role": "learner", "exp": now() - 10}),
    );
    let response = client()
        .post(gw.url("/api/v1/auth/login"))
        .bearer_auth(expired)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_on_protected_routes() {
    let (gw, _) = setup().await;
    let mut c = claims(USER_1);
    let with = |key: &str, value: Value| {
        let mut claims = claims(USER_1);
        claims[key] = value;
        sign(KEY_A_PEM, "a", &claims)
    };
    c.as_object_mut().unwrap().remove("exp");
    let no_exp = sign(KEY_A_PEM, "a", &c);
    let header_none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"a"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(USER_1).to_string());
    let alg_none = format!("{header_none}.{payload}.");
    // HS256 "signed" with the public key as the secret: the classic alg-confusion attack.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("a".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(USER_1),
        &jsonwebtoken::EncodingKey::from_secret(KEY_A_X.as_bytes()),
    )
    .unwrap();
    let valid = token(USER_1);
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let admin = with("role", json!("admin"));
    let admin_payload = admin.split('.').nth(1).unwrap();
    let forged_payload = format!("{head}.{admin_payload}.{sig}");

    let cases: Vec<(&str, String)> = vec![
        ("malformed", "not-a-jwt".into()),
        ("three garbage parts", "a.b.c".into()),
        ("expired", with("exp", json!(now() - 1))),
        ("wrong audience", with("aud", json!("someone-else"))),
        ("wrong issuer", with("iss", json!("http://evil.test"))),
        ("no exp", no_exp),
        ("unknown role", with("role", json!("root"))),
        ("subject not a uuid", with("sub", json!("admin"))),
        (
            "wrong key, right kid",
            sign(KEY_B_PEM, "a", &claims(USER_1)),
        ),
        ("unknown kid", sign(KEY_B_PEM, "zzz", &claims(USER_1))),
        ("alg none", alg_none),
        ("alg confusion HS256", hs),
        ("payload swapped", forged_payload),
        ("huge", "x".repeat(9000)),
    ];
    for (name, bad) in cases {
        let response = client()
            .get(gw.url("/api/v1/me"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{name}"
        );
        let body = problem(response, 401).await;
        assert_eq!(body["status"], 401, "{name}");
    }
    // Missing token and other schemes.
    let body = problem(
        client().get(gw.url("/api/v1/me")).send().await.unwrap(),
        401,
    )
    .await;
    assert_eq!(body["detail"], "missing access token");
    let response = client()
        .get(gw.url("/api/v1/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
    gw.stop().await;
}

#[tokio::test]
async fn key_rotation_needs_no_restart_and_fake_kids_do_not_hammer_the_api() {
    let (gw, keys) = setup().await;
    let ok = client()
        .get(gw.url("/api/v1/me"))
        .bearer_auth(token(USER_1))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(keys.fetch_count(), 1);

    // A flood of made-up key ids costs at most one JWKS fetch per second.
    for i in 0..30 {
        let bad = sign(KEY_B_PEM, &format!("fake-{i}"), &claims(USER_1));
        let response = client()
            .get(gw.url("/api/v1/me"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    assert!(
        keys.fetch_count() <= 2,
        "fetched {} times",
        keys.fetch_count()
    );

    // The API rotates to key B: tokens signed with it verify once the gateway refetches.
    keys.set(&[("a", KEY_A_X), ("b", KEY_B_X)]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = sign(KEY_B_PEM, "b", &claims(USER_2));
    let response = client()
        .get(gw.url("/api/v1/me"))
        .bearer_auth(&rotated)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["headers"]["x-lmsd-user"], USER_2);
    gw.stop().await;
}

#[tokio::test]
async fn removed_keys_stop_verifying_after_the_background_refresh() {
    let keys = StubKeys::with(&[("a", KEY_A_X)]);
    let stub = start_stub(keys.clone()).await;
    let gw = start_gateway(&[stub], |c| c.jwks_refresh_secs = 1).await;
    let t = token(USER_1);
    assert_eq!(
        client()
            .get(gw.url("/api/v1/me"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    keys.set(&[("b", KEY_B_X)]);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    // The cached verification is dropped with the key set it belonged to.
    let response = client()
        .get(gw.url("/api/v1/me"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
    gw.stop().await;
}

#[tokio::test]
async fn no_keys_at_all_is_a_503_not_a_401() {
    // An upstream without a JWKS endpoint (the echo answers 200 with JSON that has no keys).
    let keys = StubKeys::default();
    let stub = start_stub(keys).await;
    let gw = start_gateway(&[stub], |_| {}).await;
    let response = client()
        .get(gw.url("/api/v1/me"))
        .bearer_auth(token(USER_1))
        .send()
        .await
        .unwrap();
    let body = problem(response, 503).await;
    assert_eq!(body["detail"], "service temporarily unavailable");
    gw.stop().await;
}
