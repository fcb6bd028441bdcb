//! `/media/*`: signed URLs, files from disk with ranges and HLS content types,
//! scoped playlists, CDN redirects, and everything that must be refused.

mod common;

use std::path::Path;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const KEY: &str = "media-key-for-tests-0123456789";

fn sign(path: &str, exp: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{exp}\n{path}").as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn signed(path: &str, exp: u64) -> String {
    format!("{path}?exp={exp}&sig={}", sign(path, exp))
}

async fn media_gateway(tweak: impl FnOnce(&mut lmsd_gateway::Config, &Path)) -> Gateway {
    let stub = start_stub(StubKeys::default()).await;
    let root = temp_dir("media");
    let dir = root.join("media");
    std::fs::create_dir_all(dir.join("c1/lesson 1")).unwrap();
    std::fs::write(
        dir.join("c1/lesson 1/seg0.ts"),
        (0..=255u8).cycle().take(4096).collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(
        dir.join("c1/lesson 1/index.m3u8"),
        "#EXTM3U\n#EXTINF:4,\nseg0.ts\n",
    )
    .unwrap();
    std::fs::write(root.join("outside.txt"), "secret").unwrap();
    let key_file = root.join("media.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    start_gateway(&[stub], |c| {
        c.media_dir = Some(dir.clone());
        c.media_key_file = Some(key_file);
        tweak(c, &dir);
    })
    .await
}

#[tokio::test]
async fn signed_files_are_served_with_ranges_and_hls_types() {
    let gw = media_gateway(|_, _| {}).await;
    let exp = now() + 300;
    let url = gw.url(&signed("/media/c1/lesson 1/seg0.ts", exp).replace(' ', "%20"));
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp2t");
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert_eq!(response.bytes().await.unwrap().len(), 4096);

    let response = client()
        .get(&url)
        .header("range", "bytes=256-511")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], "bytes 256-511/4096");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 256);
    assert_eq!(bytes[0], 0);
    assert_eq!(bytes[255], 255);

    let response = client().head(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "4096");

    let playlist = gw.url(&signed("/media/c1/lesson 1/index.m3u8", exp).replace(' ', "%20"));
    let response = client().get(&playlist).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    gw.stop().await;
}

#[tokio::test]
async fn scoped_playlists_carry_the_signature_to_their_segments() {
    let gw = media_gateway(|_, _| {}).await;
    let exp = now() + 300;
    let scope = "/media/c1/lesson 1/";
    let query = format!(
        "exp={exp}&scope=%2Fmedia%2Fc1%2Flesson%201%2F&sig={}",
        sign(scope, exp)
    );
    let response = client()
        .get(gw.url(&format!("/media/c1/lesson%201/index.m3u8?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "private, max-age=60");
    let text = response.text().await.unwrap();
    assert_eq!(text, format!("#EXTM3U\n#EXTINF:4,\nseg0.ts?{query}\n"));
    // ffmpeg asks for every URL with `Range: bytes=0-`: the playlist is still rewritten, whole.
    let response = client()
        .get(gw.url(&format!("/media/c1/lesson%201/index.m3u8?{query}")))
        .header("range", "bytes=0-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        format!("#EXTM3U\n#EXTINF:4,\nseg0.ts?{query}\n")
    );
    // The player resolves the segment relative to the playlist: it verifies.
    let response = client()
        .get(gw.url(&format!("/media/c1/lesson%201/seg0.ts?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // a segment never changes under its URL: browsers and CDNs may keep it
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // The scope does not stretch to other courses.
    let response = client()
        .get(gw.url(&format!("/media/c2/seg0.ts?{query}")))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
    gw.stop().await;
}

#[tokio::test]
async fn bad_media_requests_are_refused() {
    let gw = media_gateway(|_, _| {}).await;
    let path = "/media/c1/lesson%201/seg0.ts";
    let decoded = "/media/c1/lesson 1/seg0.ts";
    let exp = now() + 300;
    let cases = [
        ("unsigned", path.to_owned(), 403),
        (
            "expired",
            format!("{path}?exp={}&sig={}", now() - 1, sign(decoded, now() - 1)),
            403,
        ),
        (
            "tampered expiry",
            format!("{path}?exp={}&sig={}", exp + 1, sign(decoded, exp)),
            403,
        ),
        (
            "signature of another file",
            format!("{path}?exp={exp}&sig={}", sign("/media/c1/x.ts", exp)),
            403,
        ),
        (
            "garbage signature",
            format!("{path}?exp={exp}&sig=%%%"),
            403,
        ),
        ("missing file", signed("/media/c1/nope.ts", exp), 404),
        ("directory", signed("/media/c1", exp), 404),
    ];
    for (name, url, status) in cases {
        let response = client().get(gw.url(&url)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{name}"
        );
    }
    let response = client()
        .post(gw.url(&signed(decoded, exp).replace(' ', "%20")))
        .body("x")
        .send()
        .await
        .unwrap();
    problem(response, 405).await;
    gw.stop().await;
}

#[tokio::test]
async fn media_without_a_key_is_closed() {
    let stub = start_stub(StubKeys::default()).await;
    let gw = start_gateway(&[stub], |c| c.media_dir = Some(temp_dir("nokey"))).await;
    let response = client()
        .get(gw.url(&signed("/media/a.ts", now() + 60)))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
    gw.stop().await;
}

#[tokio::test]
async fn cdn_mode_redirects_valid_requests_only() {
    let gw = media_gateway(|c, _| c.media_cdn_url = Some("https://cdn.example/v/".into())).await;
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let exp = now() + 60;
    let response = no_redirects
        .get(gw.url(&signed("/media/c1/a.ts", exp)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        format!(
            "https://cdn.example/v/c1/a.ts?exp={exp}&sig={}",
            sign("/media/c1/a.ts", exp)
        )
        .as_str()
    );
    let response = no_redirects
        .get(gw.url("/media/c1/a.ts?exp=1&sig=x"))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
    gw.stop().await;
}
