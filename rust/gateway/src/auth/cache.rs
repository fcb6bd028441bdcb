//! A bounded cache of verified tokens, so a token is checked with Ed25519 once
//! and then recognised by a hash lookup until it expires.
//!
//! An entry is only used while the token has not expired and the key set it
//! was verified against is still current (a rotation that drops a key bumps the
//! JWKS generation and so invalidates everything verified with the old set).

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex},
};

use super::Identity;

const SHARDS: usize = 16;
/// Entries per shard; 16 × 4096 tokens is far more than one campus has in flight.
const PER_SHARD: usize = 4096;

/// Token string → identity, sharded to keep lock contention low.
#[derive(Debug)]
pub struct TokenCache {
    shards: Vec<Mutex<HashMap<Box<str>, Arc<Identity>>>>,
    hasher: RandomState,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl TokenCache {
    fn shard(&self, token: &str) -> &Mutex<HashMap<Box<str>, Arc<Identity>>> {
        let index = usize::try_from(self.hasher.hash_one(token) % SHARDS as u64).unwrap_or(0);
        &self.shards[index]
    }

    /// The identity of `token` if it was verified against key-set `generation` and
    /// has not expired at `now` (Unix seconds).
    pub fn get(&self, token: &str, now: u64, generation: u64) -> Option<Arc<Identity>> {
        let shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        shard
            .get(token)
            .filter(|id| id.exp > now && id.generation == generation)
            .cloned()
    }

    /// Remembers a verified token.
    pub fn insert(&self, token: &str, identity: Arc<Identity>, now: u64) {
        let mut shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= PER_SHARD {
            shard.retain(|_, id| id.exp > now);
            if shard.len() >= PER_SHARD {
                // Still full of live tokens: start over rather than track recency.
                shard.clear();
            }
        }
        shard.insert(token.into(), identity);
    }
}
