//! A rate budget shared by several gateway replicas, kept in a NATS JetStream
//! key-value bucket (optional: `shared_rate_nats_url`).
//!
//! The shared state is GCRA's one number per (class, key): the theoretical
//! arrival time (TAT, Unix nanoseconds, so replicas need synchronised clocks).
//! A gateway takes permits in small batches: it reads the TAT, checks how many
//! requests the budget allows now, advances the TAT by the batch and writes it
//! back with compare-and-set on the entry's revision (a conflict with another
//! replica retries). The batch — what the budget's rate yields in
//! `shared_rate_lease_ms`, at least one — is then spent locally until it is
//! used up or its lease ends, so most requests cost no NATS round trip. Permits
//! are counted in the shared TAT when taken, so N replicas together never allow
//! more than the budget; unused permits of an expired lease are simply lost.
//!
//! The process-local limiter ([`crate::ratelimit`]) still runs first, so a
//! flood is refused without touching NATS. When NATS cannot be reached (not
//! connected, an operation failing or taking longer than [`OP_TIMEOUT`]) the
//! gateway falls back to its local limits for [`RETRY_AFTER_FAILURE`], logs the
//! change of state and counts every request decided without the shared budget
//! (`lmsd_gateway_shared_rate_fallbacks_total`; `lmsd_gateway_shared_rate_up`
//! is 0 meanwhile).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_nats::jetstream::{
    self,
    kv::{self, CreateErrorKind, Operation, UpdateErrorKind},
};
use axum::body::Bytes;
use tokio::time::Instant;

use crate::{
    config::{Budget, Config},
    error::{AppError, RateLimited},
    ratelimit::{ceil_secs, ClientKey},
    routes::RateClass,
};

/// Longest a NATS operation may take before the local limits decide.
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// How long the gateway stays on local limits after NATS failed.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
/// Compare-and-set attempts per batch before giving up (and falling back).
const MAX_CAS_ATTEMPTS: usize = 8;
/// Entries of the bucket expire after this long without a write.
const ENTRY_MAX_AGE: Duration = Duration::from_secs(3600);

/// Permits taken from the shared budget and not spent yet, or a refusal.
#[derive(Debug)]
struct Lease {
    permits: u64,
    until: Instant,
    /// The shared budget has no permit before this (the TAT only grows), so
    /// requests until then are refused without asking NATS.
    refused_until: Option<Instant>,
}

type LeaseMap = HashMap<(RateClass, ClientKey), Arc<tokio::sync::Mutex<Lease>>>;

/// Outcome of asking the shared budget for permits.
enum Taken {
    Granted(u64),
    Refused { wait: Duration },
}

/// The shared budgets of one gateway process.
pub struct SharedLimiter {
    url: String,
    bucket: String,
    lease: Duration,
    budgets: [Option<Budget>; 4],
    store: OnceLock<kv::Store>,
    leases: Mutex<LeaseMap>,
    /// Milliseconds since `epoch` until which NATS is not asked.
    down_until: AtomicU64,
    up: AtomicBool,
    fallbacks: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("url", &self.url)
            .field("bucket", &self.bucket)
            .field("lease", &self.lease)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// The shared limiter for `config`, or `None` when no NATS URL is configured.
    pub fn new(config: &Config) -> Option<Self> {
        let url = config.shared_rate_nats_url.clone()?;
        Some(Self {
            url,
            bucket: config.shared_rate_bucket.clone(),
            lease: Duration::from_millis(config.shared_rate_lease_ms),
            budgets: [
                config.rate_login.0,
                config.rate_write.0,
                config.rate_read.0,
                config.rate_media.0,
            ],
            store: OnceLock::new(),
            leases: Mutex::new(HashMap::new()),
            down_until: AtomicU64::new(0),
            up: AtomicBool::new(false),
            fallbacks: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Connects to NATS and opens (or creates) the bucket, retrying until it works.
    /// Run it as a background task; until it succeeds the local limits decide.
    pub async fn connect(&self) {
        let mut logged = false;
        loop {
            match self.try_connect().await {
                Ok(store) => {
                    let _ = self.store.set(store);
                    self.mark_up();
                    return;
                }
                Err(err) => {
                    if !logged {
                        tracing::warn!(url = %self.url, bucket = %self.bucket, error = %err,
                            "shared rate budget unavailable (cannot reach NATS); using local limits only, retrying");
                        logged = true;
                    }
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                }
            }
        }
    }

    async fn try_connect(&self) -> Result<kv::Store, async_nats::Error> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .name("lmsd-gateway")
            .connect(self.url.as_str())
            .await?;
        let js = jetstream::new(client);
        if let Ok(store) = js.get_key_value(self.bucket.as_str()).await {
            return Ok(store);
        }
        Ok(js
            .create_key_value(kv::Config {
                bucket: self.bucket.clone(),
                description: "lmsd-gateway shared rate budgets (GCRA TAT per class and client)"
                    .into(),
                history: 1,
                max_age: ENTRY_MAX_AGE,
                ..Default::default()
            })
            .await?)
    }

    /// True while the shared budget is in use (connected, last operation fine).
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Requests decided by the local limits alone because NATS was unavailable.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Relaxed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn mark_up(&self) {
        self.down_until.store(0, Relaxed);
        if !self.up.swap(true, Relaxed) {
            tracing::info!(url = %self.url, bucket = %self.bucket, "shared rate budget in use (NATS reachable)");
        }
    }

    fn mark_down(&self, why: &str) {
        let until = self.now_ms() + u64::try_from(RETRY_AFTER_FAILURE.as_millis()).unwrap_or(0);
        self.down_until.store(until, Relaxed);
        if self.up.swap(false, Relaxed) {
            tracing::warn!(url = %self.url, error = why,
                "shared rate budget unavailable; falling back to local limits");
        }
    }

    fn fallback(&self) -> Result<(), AppError> {
        self.fallbacks.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Spends one request of `class` for `key` from the shared budget (after the
    /// local limiter allowed it). Without NATS this allows (local limits only).
    pub async fn check(&self, class: RateClass, key: &ClientKey) -> Result<(), AppError> {
        let Some(budget) = self.budgets[class.index()] else {
            return Ok(());
        };
        let Some(store) = self.store.get() else {
            return self.fallback();
        };
        if self.down_until.load(Relaxed) > self.now_ms() {
            return self.fallback();
        }
        let lease = {
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            leases
                .entry((class, *key))
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(Lease {
                        permits: 0,
                        until: Instant::now(),
                        refused_until: None,
                    }))
                })
                .clone()
        };
        // Requests of one key wait for each other's batch instead of each asking NATS.
        let mut lease = lease.lock().await;
        let now = Instant::now();
        if lease.permits > 0 && now < lease.until {
            lease.permits -= 1;
            return Ok(());
        }
        if let Some(until) = lease.refused_until.filter(|until| now < *until) {
            return Err(refusal(class, budget, until - now));
        }
        let batch = batch_size(budget, self.lease);
        let taken = tokio::time::timeout(OP_TIMEOUT, take(store, &kv_key(class, key), budget, batch)).await;
        match taken {
            Ok(Ok(Taken::Granted(n))) => {
                lease.permits = n - 1;
                lease.until = now + self.lease;
                lease.refused_until = None;
                self.mark_up();
                Ok(())
            }
            Ok(Ok(Taken::Refused { wait })) => {
                lease.permits = 0;
                lease.refused_until = Some(now + wait);
                self.mark_up();
                Err(refusal(class, budget, wait))
            }
            Ok(Err(err)) => {
                self.mark_down(&err);
                self.fallback()
            }
            Err(_) => {
                self.mark_down("NATS operation timed out");
                self.fallback()
            }
        }
    }

    /// Forgets leases that ended and are not in use (call periodically).
    pub fn prune(&self) {
        let now = Instant::now();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.retain(|_, lease| {
            Arc::strong_count(lease) > 1
                || lease
                    .try_lock()
                    .map_or(true, |l| l.until > now || l.refused_until.is_some_and(|r| r > now))
        });
    }
}

/// The 429 for `class` when the shared budget has no permit for `wait`.
fn refusal(class: RateClass, budget: Budget, wait: Duration) -> AppError {
    AppError::TooManyRequests(RateLimited {
        class: class.as_str(),
        retry_after_secs: ceil_secs(wait),
        limit: budget.burst.get(),
        window_secs: budget.unit.as_secs(),
    })
}

/// Permits per NATS round trip: what the budget's rate yields in one lease, at
/// least 1, at most the burst.
fn batch_size(budget: Budget, lease: Duration) -> u64 {
    let per_lease = lease.as_nanos() / budget.interval().as_nanos().max(1);
    u64::try_from(per_lease)
        .unwrap_or(u64::MAX)
        .clamp(1, u64::from(budget.burst.get()))
}

/// The bucket key of a (class, client): `read.u.<uuid>`, `login.ip.<hex>`.
fn kv_key(class: RateClass, key: &ClientKey) -> String {
    match key {
        ClientKey::User(id) => format!("{}.u.{}", class.as_str(), id.hyphenated()),
        // Hex of the address bytes: `:` is not allowed in keys.
        ClientKey::Ip(IpAddr::V4(ip)) => format!("{}.ip4.{}", class.as_str(), hex(&ip.octets())),
        ClientKey::Ip(IpAddr::V6(ip)) => format!("{}.ip6.{}", class.as_str(), hex(&ip.octets())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// GCRA on the shared TAT: how many of `want` permits fit now (`Granted`, with
/// the TAT advanced by compare-and-set), or how long until one does.
async fn take(store: &kv::Store, key: &str, budget: Budget, want: u64) -> Result<Taken, String> {
    let interval = u64::try_from(budget.interval().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let capacity = interval.saturating_mul(u64::from(budget.burst.get()));
    for _ in 0..MAX_CAS_ATTEMPTS {
        let now = unix_nanos();
        let entry = store.entry(key).await.map_err(|e| e.to_string())?;
        let (stored, revision) = match &entry {
            Some(e) if e.operation == Operation::Put => (
                std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0),
                Some(e.revision),
            ),
            _ => (0, None),
        };
        let tat = stored.max(now);
        let available = (now.saturating_add(capacity)).saturating_sub(tat) / interval;
        if available == 0 {
            let wait = tat.saturating_add(interval).saturating_sub(now.saturating_add(capacity));
            return Ok(Taken::Refused {
                wait: Duration::from_nanos(wait),
            });
        }
        let n = want.min(available);
        let value = Bytes::from(tat.saturating_add(n * interval).to_string());
        let written = match revision {
            Some(revision) => match store.update(key, value, revision).await {
                Ok(_) => true,
                Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => false,
                Err(err) => return Err(err.to_string()),
            },
            None => match store.create(key, value).await {
                Ok(_) => true,
                Err(err) if err.kind() == CreateErrorKind::AlreadyExists => false,
                Err(err) => return Err(err.to_string()),
            },
        };
        if written {
            return Ok(Taken::Granted(n));
        }
        // Another replica wrote in between: read again.
    }
    Err("too many concurrent updates of one key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(s: &str) -> Budget {
        s.parse::<crate::config::MaybeBudget>().unwrap().0.unwrap()
    }

    #[test]
    fn batches_follow_the_rate() {
        assert_eq!(batch_size(budget("100/s:200"), Duration::from_millis(100)), 10);
        assert_eq!(batch_size(budget("60/m:60"), Duration::from_millis(100)), 1);
        assert_eq!(batch_size(budget("1000/s:5"), Duration::from_millis(100)), 5);
    }

    #[test]
    fn keys_are_valid_kv_keys() {
        let v6 = kv_key(RateClass::Read, &ClientKey::Ip("::1".parse().unwrap()));
        assert_eq!(v6, "read.ip6.00000000000000000000000000000001");
        let v4 = kv_key(RateClass::Login, &ClientKey::Ip("10.0.0.2".parse().unwrap()));
        assert_eq!(v4, "login.ip4.0a000002");
        let user = kv_key(RateClass::Write, &ClientKey::User(uuid::Uuid::nil()));
        assert_eq!(user, "write.u.00000000-0000-0000-0000-000000000000");
    }
}
