//! Gateway configuration, in layers (later wins): built-in defaults → the TOML
//! config file (`--config`, `LMSD_GATEWAY_CONFIG`) → `LMSD_GATEWAY_*` environment
//! variables → command-line flags.
//!
//! The file's keys are the flag names with `_` for `-` (`request_timeout_secs = 5`,
//! `upstreams = ["http://a:1"]`); [`file_env`] turns them into the environment
//! variables clap reads, so every setting has exactly one parser.

mod values;

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{CommandFactory, FromArgMatches, Parser};

pub use values::{Balance, Budget, MaybeBudget, Network, RoutePattern, Upstream};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8800";
/// Default per-request timeout (until the upstream's response headers arrive), seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Default maximum request body size: 100 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;
/// Routes under `/api/` and `/search/` that need no token.
/// (`GET /api/v1/sso/*` covers the browser redirects of single sign-on; the API
/// still authorises everything it serves, a public route only skips the gateway's check.)
pub const DEFAULT_PUBLIC_ROUTES: &str =
    "/api/v1/auth/*,/api/v1/campus,/api/v1/schema*,GET /api/v1/sso/*,GET /api/v1/media/*";
/// Prefix of the environment variables the gateway reads.
pub const ENV_PREFIX: &str = "LMSD_GATEWAY_";

/// Runtime configuration of the gateway.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lmsd-gateway",
    version,
    about = "HTTP gateway (reverse proxy) in front of the lmsd application servers"
)]
pub struct Config {
    /// TOML file with any of the settings below (keys = flag names with `_`).
    #[arg(long, env = "LMSD_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address (IP:PORT) to listen on; port 0 picks a free port (see the `listening on` log line).
    #[arg(long, env = "LMSD_GATEWAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// API workers (`/api/*`): http://HOST:PORT[/PREFIX]; repeat or comma-separate.
    #[arg(
        long = "upstream",
        value_name = "URL",
        env = "LMSD_GATEWAY_UPSTREAMS",
        value_delimiter = ',',
        required = true
    )]
    pub upstreams: Vec<Upstream>,

    /// Portal servers (everything not claimed by another route); default: the API workers.
    #[arg(
        long = "portal-upstream",
        value_name = "URL",
        env = "LMSD_GATEWAY_PORTAL_UPSTREAMS",
        value_delimiter = ','
    )]
    pub portal_upstreams: Vec<Upstream>,

    /// Search service (`/search/*`); without one those paths answer 404.
    #[arg(
        long = "search-upstream",
        value_name = "URL",
        env = "LMSD_GATEWAY_SEARCH_UPSTREAMS",
        value_delimiter = ','
    )]
    pub search_upstreams: Vec<Upstream>,

    /// How each pool picks an upstream.
    #[arg(
        long,
        env = "LMSD_GATEWAY_BALANCE",
        value_enum,
        default_value = "least-connections"
    )]
    pub balance: Balance,

    /// Consecutive failures (connect errors, timeouts) that take an upstream out of its pool.
    #[arg(long, env = "LMSD_GATEWAY_MAX_FAILS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_fails: u32,

    /// Seconds a failed upstream stays out before one request retries it.
    #[arg(long, env = "LMSD_GATEWAY_FAIL_TIMEOUT_SECS", default_value_t = 10)]
    pub fail_timeout_secs: u64,

    /// Seconds to wait for an upstream's response headers before answering 504.
    #[arg(long, env = "LMSD_GATEWAY_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,

    /// Seconds a client may take to send the request head (slow clients are disconnected).
    #[arg(long, env = "LMSD_GATEWAY_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,

    /// Largest request head (request line and headers) in bytes; larger ones get 431.
    #[arg(long, env = "LMSD_GATEWAY_MAX_HEADER_BYTES", default_value_t = 16384, value_parser = clap::value_parser!(u64).range(8192..=1_048_576))]
    pub max_header_bytes: u64,

    /// Largest accepted request body in bytes; larger bodies get 413.
    #[arg(long, env = "LMSD_GATEWAY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: u64,

    /// Serving threads, each with its own single-threaded runtime; 0 = one per CPU.
    #[arg(long, env = "LMSD_GATEWAY_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Seconds to let in-flight requests finish on shutdown before closing them.
    #[arg(long, env = "LMSD_GATEWAY_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// Where the API publishes its signing keys; default: `/api/v1/auth/jwks.json` on the API workers.
    #[arg(long, env = "LMSD_GATEWAY_JWKS_URL")]
    pub jwks_url: Option<Upstream>,

    /// Seconds between background JWKS refreshes (an unknown `kid` refreshes at once).
    #[arg(long, env = "LMSD_GATEWAY_JWKS_REFRESH_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub jwks_refresh_secs: u64,

    /// Required `iss` claim (the portal URL without a trailing slash); unchecked when unset.
    #[arg(long, env = "LMSD_GATEWAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim.
    #[arg(long, env = "LMSD_GATEWAY_JWT_AUDIENCE", default_value = "lmsd")]
    pub jwt_audience: String,

    /// Routes under /api/ and /search/ that need no token: `[METHOD ]PATH[*]`, comma-separated.
    #[arg(long = "public-route", value_name = "PATTERN", env = "LMSD_GATEWAY_PUBLIC_ROUTES", value_delimiter = ',', default_value = DEFAULT_PUBLIC_ROUTES)]
    pub public_routes: Vec<RoutePattern>,

    /// Budget for sign-in (`POST /api/v1/auth/login`, `POST /login`, password-reset
    /// confirmation), per client IP. Generous enough for a classroom behind one NAT
    /// address; per-account lockout is the API's job.
    #[arg(long, env = "LMSD_GATEWAY_RATE_LOGIN", default_value = "60/m:60")]
    pub rate_login: MaybeBudget,

    /// Budget for writes (POST, PUT, PATCH, DELETE) per user, or per IP when anonymous.
    #[arg(long, env = "LMSD_GATEWAY_RATE_WRITE", default_value = "50/s:100")]
    pub rate_write: MaybeBudget,

    /// Budget for reads (GET, HEAD, OPTIONS) per user, or per IP when anonymous.
    #[arg(long, env = "LMSD_GATEWAY_RATE_READ", default_value = "100/s:200")]
    pub rate_read: MaybeBudget,

    /// Budget for `/media/*` per user, or per IP when anonymous.
    #[arg(long, env = "LMSD_GATEWAY_RATE_MEDIA", default_value = "200/s:400")]
    pub rate_media: MaybeBudget,

    /// NATS server (`nats://host:4222`) holding a rate budget shared by all gateway
    /// replicas (JetStream key-value); unset: each process limits on its own.
    #[arg(long, env = "LMSD_GATEWAY_SHARED_RATE_NATS_URL")]
    pub shared_rate_nats_url: Option<String>,

    /// JetStream key-value bucket of the shared rate budget (created when missing).
    #[arg(
        long,
        env = "LMSD_GATEWAY_SHARED_RATE_BUCKET",
        default_value = "lmsd_gateway_rate"
    )]
    pub shared_rate_bucket: String,

    /// Milliseconds a gateway may spend permits taken from the shared budget
    /// before asking NATS again (each take is what the rate yields in this time).
    #[arg(long, env = "LMSD_GATEWAY_SHARED_RATE_LEASE_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub shared_rate_lease_ms: u64,

    /// Proxies whose `X-Forwarded-For` is believed (IPs or CIDRs, comma-separated).
    #[arg(
        long = "trusted-proxy",
        value_name = "NET",
        env = "LMSD_GATEWAY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<Network>,

    /// Clients allowed to read `/metrics` (after resolving trusted proxies).
    #[arg(
        long = "metrics-allow",
        value_name = "NET",
        env = "LMSD_GATEWAY_METRICS_ALLOW",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1"
    )]
    pub metrics_allow: Vec<Network>,

    /// Directory `/media/*` is served from (HLS playlists and segments).
    #[arg(long, env = "LMSD_GATEWAY_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,

    /// Redirect valid `/media/*` requests to this base URL instead of serving files.
    #[arg(long, env = "LMSD_GATEWAY_MEDIA_CDN_URL")]
    pub media_cdn_url: Option<String>,

    /// File holding the HMAC key that signs media URLs; without it `/media/*` answers 403.
    #[arg(long, env = "LMSD_GATEWAY_MEDIA_KEY_FILE")]
    pub media_key_file: Option<PathBuf>,
}

impl Config {
    /// A config with default settings for the given upstreams (handy for embedding and tests).
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        // Defaults only: the process environment must not leak into an embedded config.
        let matches = Self::command()
            .mut_args(|arg| arg.env(None::<&str>))
            .try_get_matches_from(["lmsd-gateway", "--upstream", "http://placeholder:1"])
            .expect("the defaults parse");
        let mut config = Self::from_arg_matches(&matches).expect("the defaults are valid");
        config.upstreams = upstreams;
        config
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
        if self.request_timeout_secs == 0 || self.header_timeout_secs == 0 {
            return Err(ConfigError("timeouts must be at least 1 second".into()));
        }
        if self.max_fails == 0 {
            return Err(ConfigError("max_fails must be at least 1".into()));
        }
        if let Some(cdn) = &self.media_cdn_url {
            if !(cdn.starts_with("https://") || cdn.starts_with("http://")) {
                return Err(ConfigError(format!(
                    "media CDN URL {cdn:?} must start with https://"
                )));
            }
        }
        Ok(())
    }
}

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The environment variables a config file sets: `(name, value)` for each of its keys
/// whose variable is not already set (`is_set`), so the real environment wins.
pub fn file_env(
    text: &str,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|err| ConfigError(format!("config file is not valid TOML: {err}")))?;
    let known: Vec<String> = Config::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .filter_map(|env| env.to_str().map(str::to_owned))
        .collect();
    let mut pairs = Vec::new();
    for (key, value) in table {
        let var = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase());
        if !known.contains(&var) || key == "config" {
            return Err(ConfigError(format!(
                "unknown key {key:?} in the config file"
            )));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Ok(other.to_string()),
                })
                .collect::<Result<Vec<_>, ConfigError>>()?
                .join(","),
            other => return Err(ConfigError(format!("{key}: unsupported value {other}"))),
        };
        if !is_set(&var) {
            pairs.push((var, text));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "--rate-read",
            "off",
            "--balance",
            "round-robin",
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
        let ups: Vec<String> = c.upstreams.iter().map(ToString::to_string).collect();
        assert_eq!(ups, ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(c.request_timeout(), Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 10);
        assert_eq!(c.rate_read, MaybeBudget(None));
        assert_eq!(c.balance, Balance::RoundRobin);
        assert_eq!(c.public_routes.len(), 5);

        for bad in [
            &["--request-timeout-secs", "0"][..],
            &["--max-header-bytes", "100"],
            &["--rate-write", "lots"],
            &["--public-route", "nope"],
        ] {
            let argv = ["lmsd-gateway", "--upstream", "http://a:1"]
                .into_iter()
                .chain(bad.iter().copied());
            assert!(Config::try_parse_from(argv).is_err(), "{bad:?}");
        }
        assert!(Config::try_parse_from(["lmsd-gateway", "--upstream", "https://a:1"]).is_err());
    }

    #[test]
    fn validate_requires_an_upstream() {
        assert!(Config::new(vec![]).validate().is_err());
        let ok = Config::new(vec!["http://a:1".parse().unwrap()]);
        assert!(ok.validate().is_ok());
        assert_eq!(ok.rate_login.0.unwrap().to_string(), "60/m:60");
    }

    #[test]
    fn config_file_becomes_environment() {
        let text = r#"
            upstreams = ["http://a:1", "http://b:2"]
            request_timeout_secs = 7
            rate_read = "5/s:5"
        "#;
        let mut pairs = file_env(text, |var| var == "LMSD_GATEWAY_RATE_READ").unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                (
                    "LMSD_GATEWAY_REQUEST_TIMEOUT_SECS".to_owned(),
                    "7".to_owned()
                ),
                (
                    "LMSD_GATEWAY_UPSTREAMS".to_owned(),
                    "http://a:1,http://b:2".to_owned()
                ),
            ]
        );
        assert!(file_env("nonsense = 1", |_| false).is_err());
        assert!(file_env("listen = [", |_| false).is_err());
        assert!(file_env("config = \"x\"", |_| false).is_err());
    }
}
