//! Header rewriting for proxied requests and responses: hop-by-hop headers,
//! `X-Forwarded-*` (believed only from trusted proxies) and upgrade handshakes.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};

use super::ClientInfo;

/// Headers that describe a single hop and must not be forwarded (RFC 9110 §7.6.1),
/// plus the non-standard `Proxy-Connection`. (Names, not strings: a string is
/// parsed into a name on every lookup.)
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The `Content-Length` the client declared, if any and well-formed.
pub(super) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// True for an HTTP/1.1 upgrade handshake (`Connection: upgrade` plus `Upgrade`).
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers, including those named by `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // The common case: nothing to do. One pass over the (few) names present
    // beats a hash lookup for each of the nine hop-by-hop names.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Turns the headers of a request received for `uri` into the ones to send
/// upstream, in place. `peer_header`, when given, is `info.peer` as a header value
/// (the caller may keep one per connection).
pub(super) fn rewrite_request_headers(
    headers: &mut HeaderMap,
    uri: &Uri,
    info: Option<ClientInfo>,
    upgrade: bool,
    peer_header: Option<&HeaderValue>,
) {
    let upgrade_to = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade_to {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    let trusted = info.is_some_and(|i| i.trusted_peer);
    if !trusted {
        // Only a trusted proxy may tell us about earlier hops.
        headers.remove(&X_FORWARDED_FOR);
        headers.remove(&X_FORWARDED_PROTO);
        headers.remove(&X_FORWARDED_HOST);
    }

    let host = headers.remove(header::HOST).or_else(|| {
        uri.authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    });
    if let Some(host) = host {
        if !headers.contains_key(&X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }

    if let Some(info) = info {
        let ip = info.peer;
        let own = || peer_header.cloned().unwrap_or_else(|| ip_header(ip));
        let value = if trusted && headers.contains_key(&X_FORWARDED_FOR) {
            let previous: Vec<&str> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            let value = format!("{}, {ip}", previous.join(", "));
            HeaderValue::from_str(&value).unwrap_or_else(|_| own())
        } else {
            own()
        };
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
}

/// `ip` as a header value.
pub(crate) fn ip_header(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).expect("an IP address is a valid header value")
}

#[cfg(test)]
mod tests {
    use axum::http::request::Parts;

    use super::*;

    fn forwarded_headers(parts: &Parts, info: Option<ClientInfo>, upgrade: bool) -> HeaderMap {
        let mut headers = parts.headers.clone();
        rewrite_request_headers(&mut headers, &parts.uri, info, upgrade, None);
        headers
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().uri("/p?q=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn info(peer: &str, trusted_peer: bool) -> Option<ClientInfo> {
        let peer = peer.parse().unwrap();
        Some(ClientInfo {
            peer,
            client: peer,
            trusted_peer,
        })
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = parts(&[
            ("connection", "keep-alive, X-Custom-Hop"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic Zm9v"),
            ("x-end-to-end", "kept"),
        ])
        .headers;
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["x-end-to-end"], "kept");
    }

    #[test]
    fn sets_forwarding_headers() {
        let from_proxy = parts(&[
            ("host", "lms.example"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let headers = forwarded_headers(&from_proxy, info("127.0.0.1", true), false);
        assert!(headers.get(header::HOST).is_none());
        assert_eq!(headers["x-forwarded-host"], "lms.example");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");

        // The same headers from an untrusted client are replaced.
        let headers = forwarded_headers(&from_proxy, info("192.0.2.1", false), false);
        assert_eq!(headers["x-forwarded-for"], "192.0.2.1");
        assert_eq!(headers["x-forwarded-proto"], "http");

        let headers = forwarded_headers(&parts(&[]), info("::1", false), false);
        assert_eq!(headers["x-forwarded-for"], "::1");
        assert!(headers.get("x-forwarded-host").is_none());
    }

    #[test]
    fn keeps_an_upgrade_handshake() {
        let p = parts(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(is_upgrade(&p.headers));
        let headers = forwarded_headers(&p, None, true);
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert!(!is_upgrade(&parts(&[("upgrade", "websocket")]).headers));
    }

    #[test]
    fn declared_length_parsing() {
        assert_eq!(
            declared_length(&parts(&[("content-length", "42")]).headers),
            Some(42)
        );
        assert_eq!(
            declared_length(&parts(&[("content-length", "x")]).headers),
            None
        );
        assert_eq!(declared_length(&parts(&[]).headers), None);
    }
}
