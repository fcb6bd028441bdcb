//! Upstream pools: balancing (least connections or round robin) and passive
//! health checks.
//!
//! Passive health works like nginx's `max_fails`/`fail_timeout`: after
//! `max_fails` consecutive failures (refused connection, timeout, broken
//! exchange) an upstream is skipped for `fail_timeout`; the first request after
//! that is its retry, and one success puts it back. When every upstream is out,
//! they are tried anyway: refusing all traffic would be worse than a retry.

use std::{
    sync::{
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use axum::http::HeaderValue;
use tokio::time::Instant;

use crate::config::{Balance, Upstream};

/// One upstream and its live counters.
#[derive(Debug)]
struct Member {
    upstream: Upstream,
    /// `Host` sent to this upstream.
    host_header: HeaderValue,
    in_flight: AtomicUsize,
    fails: AtomicU32,
    /// Milliseconds since the pool's epoch until which this member is out.
    down_until: AtomicU64,
}

/// A set of interchangeable upstreams.
#[derive(Debug)]
pub struct Pool {
    /// Index into [`crate::metrics::POOLS`].
    pub id: usize,
    /// Unique among all pools of the process (keys the per-thread connection cache).
    uid: u64,
    members: Vec<Member>,
    balance: Balance,
    next: AtomicUsize,
    max_fails: u32,
    fail_timeout: Duration,
    epoch: Instant,
}

/// Keeps an upstream's in-flight count up while a request (or its response
/// body, or a WebSocket tunnel) is using it.
#[derive(Debug)]
pub struct InFlight {
    pool: Arc<Pool>,
    index: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.pool.members[self.index]
            .in_flight
            .fetch_sub(1, Relaxed);
    }
}

impl Pool {
    /// A pool of `upstreams` (may be empty: then [`Pool::candidates`] is empty).
    pub fn new(
        id: usize,
        upstreams: &[Upstream],
        balance: Balance,
        max_fails: u32,
        fail_timeout: Duration,
    ) -> Arc<Self> {
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id,
            uid: NEXT_UID.fetch_add(1, Relaxed),
            members: upstreams
                .iter()
                .map(|upstream| Member {
                    upstream: upstream.clone(),
                    host_header: upstream.host_header(),
                    in_flight: AtomicUsize::new(0),
                    fails: AtomicU32::new(0),
                    down_until: AtomicU64::new(0),
                })
                .collect(),
            balance,
            next: AtomicUsize::new(0),
            max_fails: max_fails.max(1),
            fail_timeout,
            epoch: Instant::now(),
        })
    }

    /// The pool's upstreams, in configured order.
    pub fn upstreams(&self) -> impl Iterator<Item = &Upstream> {
        self.members.iter().map(|m| &m.upstream)
    }

    /// Number of upstreams.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True if the pool has no upstream.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The upstream at `index`.
    pub fn upstream(&self, index: usize) -> &Upstream {
        &self.members[index].upstream
    }

    /// The `Host` header for the upstream at `index`.
    pub fn host_header(&self, index: usize) -> &HeaderValue {
        &self.members[index].host_header
    }

    /// Process-unique id of this pool.
    pub fn uid(&self) -> u64 {
        self.uid
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// True if the member at `index` is currently taken out.
    pub fn is_down(&self, index: usize) -> bool {
        self.members[index].down_until.load(Relaxed) > self.now_ms()
    }

    /// Upstream indexes in the order to try them: healthy ones first (by the
    /// balancing strategy), then the ones taken out, as a last resort.
    pub fn candidates(&self) -> Vec<usize> {
        let n = self.members.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Relaxed) % n;
        let now = self.now_ms();
        let rotated = (0..n).map(|k| (start + k) % n);
        let (mut up, down): (Vec<usize>, Vec<usize>) =
            rotated.partition(|&i| self.members[i].down_until.load(Relaxed) <= now);
        if self.balance == Balance::LeastConnections {
            // Stable: equal counts keep the rotated order, so idle pools still alternate.
            up.sort_by_key(|&i| self.members[i].in_flight.load(Relaxed));
        }
        up.extend(down);
        up
    }

    /// Marks the member at `index` busy until the guard drops.
    pub fn acquire(self: &Arc<Self>, index: usize) -> InFlight {
        self.members[index].in_flight.fetch_add(1, Relaxed);
        InFlight {
            pool: self.clone(),
            index,
        }
    }

    /// Records a failed exchange; takes the member out after `max_fails` in a row.
    pub fn failure(&self, index: usize) {
        let member = &self.members[index];
        let fails = member.fails.fetch_add(1, Relaxed) + 1;
        if fails >= self.max_fails {
            let until = self.now_ms()
                + u64::try_from(self.fail_timeout.as_millis()).unwrap_or(u64::MAX / 2);
            member.down_until.store(until, Relaxed);
            member.fails.store(0, Relaxed);
            tracing::warn!(upstream = %member.upstream, fail_timeout = ?self.fail_timeout, "upstream taken out of the pool");
        }
    }

    /// Records a successful exchange: the member is healthy again.
    pub fn success(&self, index: usize) {
        let member = &self.members[index];
        if member.fails.load(Relaxed) != 0 {
            member.fails.store(0, Relaxed);
        }
        if member.down_until.load(Relaxed) != 0 {
            member.down_until.store(0, Relaxed);
            tracing::info!(upstream = %member.upstream, "upstream back in the pool");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize, balance: Balance, fail_timeout: Duration) -> Arc<Pool> {
        let ups: Vec<Upstream> = (0..n)
            .map(|i| format!("http://u{i}:1").parse().unwrap())
            .collect();
        Pool::new(0, &ups, balance, 1, fail_timeout)
    }

    #[test]
    fn round_robin_rotates() {
        let p = pool(3, Balance::RoundRobin, Duration::from_secs(10));
        let firsts: Vec<usize> = (0..6).map(|_| p.candidates()[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_connections_prefers_idle_members() {
        let p = pool(3, Balance::LeastConnections, Duration::from_secs(10));
        let busy0 = p.acquire(0);
        let busy1 = p.acquire(1);
        let _busy1b = p.acquire(1);
        for _ in 0..4 {
            assert_eq!(p.candidates(), [2, 0, 1]);
        }
        drop(busy0);
        drop(busy1);
        let _busy2 = p.acquire(2);
        assert_eq!(p.candidates()[0], 0);
    }

    #[tokio::test]
    async fn failing_member_is_taken_out_then_retried() {
        let p = pool(2, Balance::RoundRobin, Duration::from_millis(100));
        p.failure(0);
        assert!(p.is_down(0));
        for _ in 0..4 {
            assert_eq!(
                p.candidates(),
                [1, 0],
                "a down member is only the last resort"
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!p.is_down(0));
        assert!(p.candidates().contains(&0));
        p.failure(0);
        p.success(0);
        assert!(!p.is_down(0));
    }
}
