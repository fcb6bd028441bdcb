//! Per-client rate limiting with GCRA (the `governor` crate), one keyed limiter
//! per route class (login, write, read, media).
//!
//! Keys: a signed-in user is limited as that user, wherever they connect from
//! (a classroom behind one NAT address must not share one budget); anonymous
//! requests, and every sign-in attempt, are limited per client IP.
//!
//! State lives in this process. With several gateway replicas each one enforces
//! the full budget, so the effective budget is N times larger — unless the
//! shared budget ([`crate::sharedrate`], NATS) is configured, which is consulted
//! after this one.

use std::{net::IpAddr, time::Duration};

use governor::{
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
    Quota, RateLimiter,
};
use uuid::Uuid;

use crate::{
    config::{Budget, Config, MaybeBudget},
    error::{AppError, RateLimited},
    routes::RateClass,
};

/// How often idle keys are dropped so memory stays bounded.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A verified user id.
    User(Uuid),
    /// A client address (after trusted-proxy resolution).
    Ip(IpAddr),
}

type Keyed = RateLimiter<
    ClientKey,
    DefaultKeyedStateStore<ClientKey>,
    DefaultClock,
    StateInformationMiddleware,
>;

struct ClassLimiter {
    limiter: Keyed,
    budget: Budget,
}

/// Budget headers for an allowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub limit: u32,
    pub remaining: u32,
}

/// The limiters of every rate class (`None` where the budget is `off`).
pub struct Limiters {
    classes: [Option<ClassLimiter>; 4],
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let budgets: Vec<String> = self
            .classes
            .iter()
            .map(|c| {
                c.as_ref()
                    .map_or("off".to_owned(), |c| c.budget.to_string())
            })
            .collect();
        f.debug_struct("Limiters")
            .field("budgets", &budgets)
            .finish()
    }
}

fn limiter(budget: MaybeBudget) -> Option<ClassLimiter> {
    let budget = budget.0?;
    let interval = budget.interval().max(Duration::from_nanos(1));
    let quota = Quota::with_period(interval)?.allow_burst(budget.burst);
    Some(ClassLimiter {
        limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        budget,
    })
}

impl Limiters {
    /// Limiters for the budgets in `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            classes: [
                limiter(config.rate_login),
                limiter(config.rate_write),
                limiter(config.rate_read),
                limiter(config.rate_media),
            ],
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `class` for `key`; `Ok(None)` when the class is unlimited.
    pub fn check(&self, class: RateClass, key: &ClientKey) -> Result<Option<Allowed>, AppError> {
        let Some(entry) = &self.classes[class.index()] else {
            return Ok(None);
        };
        match entry.limiter.check_key(key) {
            Ok(snapshot) => Ok(Some(Allowed {
                limit: entry.budget.burst.get(),
                remaining: snapshot.remaining_burst_capacity(),
            })),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(AppError::TooManyRequests(RateLimited {
                    class: class.as_str(),
                    retry_after_secs: ceil_secs(wait),
                    limit: entry.budget.burst.get(),
                    window_secs: entry.budget.unit.as_secs(),
                }))
            }
        }
    }

    /// Forgets keys whose budget is full again (call periodically).
    pub fn prune(&self) {
        for entry in self.classes.iter().flatten() {
            entry.limiter.retain_recent();
            entry.limiter.shrink_to_fit();
        }
    }

    /// Number of keys currently tracked (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.classes.iter().flatten().map(|e| e.limiter.len()).sum()
    }
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
pub(crate) fn ceil_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(read: &str, login: &str) -> Config {
        let mut c = Config::new(vec!["http://a:1".parse().unwrap()]);
        c.rate_read = read.parse().unwrap();
        c.rate_login = login.parse().unwrap();
        c
    }

    #[test]
    fn burst_then_limited_per_key() {
        let limiters = Limiters::new(&config("1/m:3", "off"));
        let alice = ClientKey::User(Uuid::new_v4());
        let bob = ClientKey::Ip("10.0.0.2".parse().unwrap());
        for remaining in [2, 1, 0] {
            let allowed = limiters.check(RateClass::Read, &alice).unwrap().unwrap();
            assert_eq!(
                allowed,
                Allowed {
                    limit: 3,
                    remaining
                }
            );
        }
        let Err(AppError::TooManyRequests(limited)) = limiters.check(RateClass::Read, &alice)
        else {
            panic!("fourth request should be limited");
        };
        assert_eq!(limited.class, "read");
        assert!((59..=60).contains(&limited.retry_after_secs), "{limited:?}");
        assert_eq!(limited.window_secs, 60);
        // Another client's budget is untouched; other classes are separate.
        assert!(limiters.check(RateClass::Read, &bob).is_ok());
        assert!(limiters.check(RateClass::Write, &alice).unwrap().is_some());
        assert_eq!(limiters.check(RateClass::Login, &alice).unwrap(), None);
        assert_eq!(limiters.tracked_keys(), 3);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 1);
    }
}
