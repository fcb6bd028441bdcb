//! Typed configuration values parsed from flags, environment or the config file:
//! upstream URLs, balancing strategies, rate budgets, route patterns and proxy networks.

use std::{fmt, net::IpAddr, num::NonZeroU32, str::FromStr, time::Duration};

use axum::http::{
    uri::{Authority, PathAndQuery},
    HeaderValue, Method, Uri,
};
use ipnet::IpNet;

use super::ConfigError;

/// One upstream server: a plain-HTTP origin plus an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    authority: Authority,
    /// Path prefix without a trailing slash; empty for the root.
    base_path: String,
}

impl Upstream {
    /// The URI to send a request for `path_and_query` (as received, starting with `/`) to.
    pub fn uri_for(&self, path_and_query: &str) -> Result<Uri, axum::http::Error> {
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.base_path, path_and_query))
            .build()
    }

    /// The origin-form request target (what goes on the request line) for
    /// `path_and_query` as received; no allocation without a path prefix.
    pub fn target_for(&self, path_and_query: &PathAndQuery) -> Result<Uri, axum::http::Error> {
        if self.base_path.is_empty() {
            return Ok(Uri::from(path_and_query.clone()));
        }
        Ok(Uri::try_from(format!("{}{}", self.base_path, path_and_query.as_str()))?)
    }

    /// Host name or IP address (IPv6 without brackets) and port (default 80) to connect to.
    pub fn host_port(&self) -> (&str, u16) {
        let host = self.authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        (host, self.authority.port_u16().unwrap_or(80))
    }

    /// The `Host` header for requests to this upstream (the port only when not 80).
    pub fn host_header(&self) -> HeaderValue {
        let value = match self.authority.port_u16() {
            Some(80) => self.authority.host().to_owned(),
            _ => self.authority.as_str().to_owned(),
        };
        HeaderValue::from_str(&value).expect("an authority is a valid header value")
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base_path)
    }
}

impl FromStr for Upstream {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let err = |why: &str| ConfigError(format!("invalid upstream URL {s:?}: {why}"));
        if s.is_empty() {
            return Err(err("empty"));
        }
        let uri: Uri = s.parse().map_err(|_| err("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(err("https is not supported, use http://")),
            _ => return Err(err("must start with http://")),
        }
        let authority = uri.authority().ok_or_else(|| err("missing host"))?.clone();
        if authority.as_str().contains('@') {
            return Err(err("credentials are not allowed"));
        }
        if authority.host().is_empty() {
            return Err(err("missing host"));
        }
        if uri.query().is_some() {
            return Err(err("a query string is not allowed"));
        }
        Ok(Self {
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// How a pool picks the upstream for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Balance {
    /// The upstream with the fewest requests in flight (ties rotate).
    LeastConnections,
    /// Each upstream in turn.
    RoundRobin,
}

/// A rate budget: `RATE/UNIT[:BURST]` (`100/s:200`, `10/m`), or `off`.
///
/// GCRA semantics: one request is allowed every `UNIT / RATE`; up to `BURST`
/// (default: `RATE`) may arrive at once after a quiet period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests per `unit`.
    pub rate: NonZeroU32,
    /// The window `rate` refers to.
    pub unit: Duration,
    /// Largest burst.
    pub burst: NonZeroU32,
}

impl Budget {
    /// Time between two requests at the sustained rate.
    pub fn interval(&self) -> Duration {
        self.unit / self.rate.get()
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}:{}", self.rate, self.burst)
    }
}

/// A budget that may be switched off (`off`, `none` or `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeBudget(pub Option<Budget>);

impl FromStr for MaybeBudget {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if matches!(s, "off" | "none" | "0") {
            return Ok(Self(None));
        }
        let err = || {
            ConfigError(format!(
                "invalid rate budget {s:?}: expected RATE/UNIT[:BURST] such as 100/s:200, or off"
            ))
        };
        let (rate, rest) = s.split_once('/').ok_or_else(err)?;
        let (unit, burst) = match rest.split_once(':') {
            Some((unit, burst)) => (unit, Some(burst)),
            None => (rest, None),
        };
        let rate: NonZeroU32 = rate.trim().parse().map_err(|_| err())?;
        let unit = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        let burst = match burst {
            Some(burst) => burst.trim().parse().map_err(|_| err())?,
            None => rate,
        };
        Ok(Self(Some(Budget { rate, unit, burst })))
    }
}

/// A route pattern: `[METHOD ]PATH`, where a `PATH` ending in `*` matches by prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    method: Option<Method>,
    path: String,
    prefix: bool,
}

impl RoutePattern {
    /// True if a request with `method` for the (decoded, normalised) `path` matches.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        if self.prefix {
            path.starts_with(&self.path)
        } else {
            path == self.path
        }
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(method) = &self.method {
            write!(f, "{method} ")?;
        }
        write!(f, "{}{}", self.path, if self.prefix { "*" } else { "" })
    }
}

impl FromStr for RoutePattern {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let err = |why: &str| ConfigError(format!("invalid route pattern {s:?}: {why}"));
        let (method, path) = match s.split_once(' ') {
            Some((method, path)) => {
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| err("bad method"))?;
                (Some(method), path.trim())
            }
            None => (None, s),
        };
        if !path.starts_with('/') {
            return Err(err("the path must start with /"));
        }
        let (path, prefix) = match path.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (path, false),
        };
        if path.contains('*') {
            return Err(err("* is only allowed at the end"));
        }
        Ok(Self {
            method,
            path: path.to_owned(),
            prefix,
        })
    }
}

/// A network (`10.0.0.0/8`) or a single address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub IpNet);

impl Network {
    /// True if `ip` is inside this network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for Network {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| Self(IpNet::from(ip)))
            .map_err(|_| ConfigError(format!("invalid network {s:?}: expected an IP or CIDR")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstreams() {
        let u: Upstream = "http://127.0.0.1:9000".parse().unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:9000");
        assert_eq!(
            u.uri_for("/a/b?x=1").unwrap().to_string(),
            "http://127.0.0.1:9000/a/b?x=1"
        );
        let u: Upstream = " http://app:8000/prefix/ ".parse().unwrap();
        assert_eq!(u.to_string(), "http://app:8000/prefix");
        assert_eq!(
            u.uri_for("/x").unwrap().to_string(),
            "http://app:8000/prefix/x"
        );
    }

    #[test]
    fn rejects_bad_upstreams() {
        for bad in [
            "",
            "127.0.0.1:9000",
            "https://example.test",
            "ftp://example.test",
            "http://user:pw@host:1",
            "http://host:1/?q=1",
            "/just/a/path",
        ] {
            assert!(
                bad.parse::<Upstream>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn budgets() {
        let b = "100/s:200".parse::<MaybeBudget>().unwrap().0.unwrap();
        assert_eq!(b.interval(), Duration::from_millis(10));
        assert_eq!(b.burst.get(), 200);
        assert_eq!(b.to_string(), "100/s:200");
        let b = "10/m".parse::<MaybeBudget>().unwrap().0.unwrap();
        assert_eq!(b.interval(), Duration::from_secs(6));
        assert_eq!(b.burst.get(), 10);
        assert_eq!("off".parse::<MaybeBudget>().unwrap(), MaybeBudget(None));
        for bad in ["", "10", "0/s", "10/d", "10/s:0", "x/s", "10/s:y"] {
            assert!(bad.parse::<MaybeBudget>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn route_patterns() {
        let p: RoutePattern = "/api/v1/auth/*".parse().unwrap();
        assert!(p.matches(&Method::POST, "/api/v1/auth/login"));
        assert!(!p.matches(&Method::GET, "/api/v1/me"));
        let p: RoutePattern = "post /login".parse().unwrap();
        assert_eq!(p.to_string(), "POST /login");
        assert!(p.matches(&Method::POST, "/login"));
        assert!(!p.matches(&Method::GET, "/login"));
        assert!(!p.matches(&Method::POST, "/login/x"));
        for bad in ["api", "/a*b", "B@D /x"] {
            assert!(bad.parse::<RoutePattern>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn networks() {
        let n: Network = "10.1.2.3/8".parse().unwrap();
        assert!(n.contains("10.200.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.9".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one: Network = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
    }
}
