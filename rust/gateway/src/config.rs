//! Gateway configuration: command-line flags with environment-variable fallbacks.
//!
//! Every flag can also be given through an `LMSD_GATEWAY_*` environment variable;
//! an explicit flag wins over the environment.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use axum::http::{uri::Authority, Uri};
use clap::Parser;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8800";
/// Default per-request timeout (until the upstream's response headers arrive), seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Default maximum request body size: 100 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;

/// Runtime configuration of the gateway.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lmsd-gateway",
    version,
    about = "HTTP gateway (reverse proxy) in front of the lmsd application servers"
)]
pub struct Config {
    /// Address (IP:PORT) to listen on; port 0 picks a free port (see the `listening on` log line).
    #[arg(long, env = "LMSD_GATEWAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Upstream base URL (http://HOST:PORT[/PREFIX]); repeat the flag, or comma-separate, for several.
    #[arg(
        long = "upstream",
        value_name = "URL",
        env = "LMSD_GATEWAY_UPSTREAMS",
        value_delimiter = ',',
        required = true
    )]
    pub upstreams: Vec<Upstream>,

    /// Seconds to wait for an upstream's response headers before answering 504.
    #[arg(
        long,
        env = "LMSD_GATEWAY_REQUEST_TIMEOUT_SECS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub request_timeout_secs: u64,

    /// Largest accepted request body in bytes; larger bodies get 413.
    #[arg(long, env = "LMSD_GATEWAY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: u64,
}

impl Config {
    /// A config with default settings for the given upstreams (handy for embedding and tests).
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("default listen address is valid"),
            upstreams,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Checks invariants that clap enforces for the CLI but a hand-built `Config` may violate.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.upstreams.is_empty() {
            return Err(ConfigError("at least one upstream is required".into()));
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError(
                "request timeout must be at least 1 second".into(),
            ));
        }
        Ok(())
    }
}

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

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
    fn cli_flags() {
        let c = Config::try_parse_from([
            "lmsd-gateway",
            "--listen",
            "0.0.0.0:9999",
            "--upstream",
            "http://a:1,http://b:2",
            "--upstream",
            "http://c:3",
            "--request-timeout-secs",
            "5",
            "--max-body-bytes",
            "10",
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
        let ups: Vec<String> = c.upstreams.iter().map(ToString::to_string).collect();
        assert_eq!(ups, ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(c.request_timeout(), Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 10);

        assert!(Config::try_parse_from([
            "lmsd-gateway",
            "--upstream",
            "http://a:1",
            "--request-timeout-secs",
            "0"
        ])
        .is_err());
        assert!(Config::try_parse_from(["lmsd-gateway", "--upstream", "https://a:1"]).is_err());
    }

    #[test]
    fn validate_requires_an_upstream() {
        assert!(Config::new(vec![]).validate().is_err());
        assert!(Config::new(vec!["http://a:1".parse().unwrap()])
            .validate()
            .is_ok());
    }
}
