//! A short-lived in-memory cache of verified credentials, with what a verification
//! needs besides: the failed-login limits and the bounded argon2 verifier.
//!
//! Invariants: the cache never holds a password, only a keyed BLAKE3 of it under a
//! key that exists only in this process; any change to an account drops its entry
//! and bumps the account's generation, so a verification that started before the
//! change cannot cache what the change revoked; entries expire after the
//! configured time. Parallel requests with the very same credentials verify once
//! (the others wait for that result, then find it in the cache); requests with
//! different passwords for one account never wait for each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;

use super::throttle::{BucketRule, LoginThrottle};
use super::verifier::Verifier;
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
    /// One gate per (username, password) being verified right now, keyed by its
    /// secret, so identical parallel requests verify once.
    in_flight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Failed-login limits.
    pub throttle: LoginThrottle,
    /// argon2, bounded, with the dummy hash for unknown accounts.
    pub verifier: Verifier,
}

/// Held while one (username, password) is verified; see
/// [`CredentialCache::verification_gate`].
pub struct VerificationGate<'a> {
    cache: &'a CredentialCache,
    secret: [u8; 32],
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for VerificationGate<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.cache.in_flight.lock().expect("credential cache lock");
        drop(self.guard.take());
        // Only the map's own reference left: nobody waits on this gate.
        if in_flight
            .get(&self.secret)
            .is_some_and(|gate| Arc::strong_count(gate) == 1)
        {
            in_flight.remove(&self.secret);
        }
    }
}

impl CredentialCache {
    /// An empty cache whose entries live for `lifetime` (zero disables caching),
    /// with the default failed-login limits.
    pub fn new(lifetime: Duration) -> CredentialCache {
        CredentialCache::with_limits(
            lifetime,
            BucketRule {
                burst: 30,
                refill: Duration::from_secs(2),
            },
            BucketRule {
                burst: 10,
                refill: Duration::from_secs(6),
            },
        )
    }

    /// An empty cache, with failed-login limits per client address and per
    /// (account, address) pair.
    pub fn with_limits(
        lifetime: Duration,
        per_address: BucketRule,
        per_pair: BucketRule,
    ) -> CredentialCache {
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        CredentialCache {
            key,
            lifetime,
            entries: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            throttle: LoginThrottle::new(per_address, per_pair),
            verifier: Verifier::new(),
        }
    }

    /// Waits until no other request is verifying these very credentials, and
    /// holds that place until the returned gate is dropped. Other passwords, for
    /// this account or any, never wait here.
    pub async fn verification_gate(&self, username: &str, password: &str) -> VerificationGate<'_> {
        let secret = self.secret(username, password);
        let gate = self
            .in_flight
            .lock()
            .expect("credential cache lock")
            .entry(secret)
            .or_default()
            .clone();
        let guard = gate.lock_owned().await;
        VerificationGate {
            cache: self,
            secret,
            guard: Some(guard),
        }
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

    #[tokio::test]
    async fn only_identical_credentials_wait_for_each_other() {
        let cache = CredentialCache::new(Duration::from_secs(60));
        let first = cache.verification_gate("ann", "guess-1").await;
        // Another password for the same account gets its own gate at once.
        let other = tokio::time::timeout(
            Duration::from_secs(30),
            cache.verification_gate("ann", "guess-2"),
        )
        .await
        .expect("a different password does not wait");
        drop(other);
        // The very same credentials wait until the first verification is done.
        let same = cache.verification_gate("ann", "guess-1");
        tokio::pin!(same);
        assert!(futures_util::poll!(same.as_mut()).is_pending());
        drop(first);
        let _same = same.await;
        assert_eq!(cache.in_flight.lock().unwrap().len(), 1);
    }

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
