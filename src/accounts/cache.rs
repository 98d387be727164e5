//! A short-lived in-memory cache of verified credentials.
//!
//! Invariants: the cache never holds a password, only a keyed BLAKE3 of it under a
//! key that exists only in this process; any change to an account drops its entry
//! and bumps the account's generation, so a verification that started before the
//! change cannot cache what the change revoked; entries expire after the
//! configured time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngExt;

use crate::model::AuthLevel;

struct Entry {
    secret: [u8; 32],
    level: AuthLevel,
    expires: Instant,
}

/// Verified (username, password) pairs and the level they grant.
pub struct CredentialCache {
    key: [u8; 32],
    lifetime: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    /// Per account, how many times it changed since the node started.
    generations: Mutex<HashMap<String, u64>>,
    /// Serialises password verification per account (sharded by name), so a burst
    /// of parallel first requests verifies once and the rest hit the cache.
    gates: Vec<tokio::sync::Mutex<()>>,
}

/// Number of verification gates.
const GATES: usize = 16;

impl CredentialCache {
    /// An empty cache whose entries live for `lifetime` (zero disables caching).
    pub fn new(lifetime: Duration) -> CredentialCache {
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        CredentialCache {
            key,
            lifetime,
            entries: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            gates: (0..GATES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// The gate to hold while verifying `username`'s password.
    pub fn verification_gate(&self, username: &str) -> &tokio::sync::Mutex<()> {
        let shard = blake3::hash(username.as_bytes()).as_bytes()[0] as usize % GATES;
        &self.gates[shard]
    }

    fn secret(&self, username: &str, password: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(username.as_bytes());
        hasher.update(&[0]);
        hasher.update(password.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// The level granted to these credentials, if they were verified recently.
    pub fn lookup(&self, username: &str, password: &str) -> Option<AuthLevel> {
        let secret = self.secret(username, password);
        let entries = self.entries.lock().expect("credential cache lock");
        let entry = entries.get(username)?;
        (entry.secret == secret && entry.expires > Instant::now()).then_some(entry.level)
    }

    /// The account's generation; read it before looking the account up, and hand
    /// it to [`CredentialCache::remember`].
    pub fn generation(&self, username: &str) -> u64 {
        let generations = self.generations.lock().expect("credential cache lock");
        generations.get(username).copied().unwrap_or(0)
    }

    /// Remembers credentials that were just verified against the account as it was
    /// at `generation`; does nothing if the account changed since.
    pub fn remember(&self, username: &str, password: &str, level: AuthLevel, generation: u64) {
        if self.lifetime.is_zero() {
            return;
        }
        let generations = self.generations.lock().expect("credential cache lock");
        if generations.get(username).copied().unwrap_or(0) != generation {
            return;
        }
        let entry = Entry {
            secret: self.secret(username, password),
            level,
            expires: Instant::now() + self.lifetime,
        };
        let mut entries = self.entries.lock().expect("credential cache lock");
        entries.retain(|_, e| e.expires > Instant::now());
        entries.insert(username.to_string(), entry);
    }

    /// Forgets an account (its password or level changed, or it was deleted).
    pub fn forget(&self, username: &str) {
        let mut generations = self.generations.lock().expect("credential cache lock");
        *generations.entry(username.to_string()).or_default() += 1;
        self.entries
            .lock()
            .expect("credential cache lock")
            .remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_during_verification_is_not_undone() {
        let cache = CredentialCache::new(Duration::from_secs(60));
        let before = cache.generation("ann");
        cache.forget("ann");
        cache.remember("ann", "old", AuthLevel::Admin, before);
        assert_eq!(cache.lookup("ann", "old"), None);
    }

    #[test]
    fn remembers_only_the_verified_password_until_forgotten() {
        let cache = CredentialCache::new(Duration::from_secs(60));
        cache.remember("ann", "pw", AuthLevel::Admin, cache.generation("ann"));
        assert_eq!(cache.lookup("ann", "pw"), Some(AuthLevel::Admin));
        assert_eq!(cache.lookup("ann", "other"), None);
        cache.forget("ann");
        assert_eq!(cache.lookup("ann", "pw"), None);
        let disabled = CredentialCache::new(Duration::ZERO);
        disabled.remember("ann", "pw", AuthLevel::Admin, 0);
        assert_eq!(disabled.lookup("ann", "pw"), None);
    }
}
