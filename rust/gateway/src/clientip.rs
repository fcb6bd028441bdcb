//! Who the client is, network-wise: the socket peer, unless that peer is a
//! trusted proxy, in which case `X-Forwarded-For` is read from the right,
//! skipping further trusted proxies. Anything a client writes to the left of
//! the first untrusted hop is ignored, so it cannot pick its own rate bucket.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::Network;

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Trust exactly `networks`.
    pub fn new(networks: Vec<Network>) -> Self {
        Self(networks)
    }

    /// True if `ip` belongs to a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client address of a request received from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Later X-Forwarded-For headers (and later entries) were added by closer hops.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                // Garbage from here on was written by someone we do not trust.
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("1.2.3.4"), &headers(&["9.9.9.9"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let h = headers(&["6.6.6.6, 5.5.5.5", "10.0.0.2"]);
        // 10.0.0.1 (peer) <- 10.0.0.2 (trusted) <- 5.5.5.5 (client); 6.6.6.6 is a forgery.
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &h), ip("5.5.5.5"));
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &headers(&[])),
            ip("10.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &headers(&["junk"])),
            ip("10.0.0.1")
        );
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &headers(&["10.0.0.3"])),
            ip("10.0.0.3")
        );
        // A peer outside the list cannot choose its address.
        assert_eq!(trusted.client_ip(ip("7.7.7.7"), &h), ip("7.7.7.7"));
    }
}
