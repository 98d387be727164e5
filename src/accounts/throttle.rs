//! Limits on failed logins: token buckets per client address and per (account,
//! address) pair.
//!
//! Every password verification that is not answered from the credential cache
//! takes one token from its address's bucket and one from its pair's bucket before
//! argon2 runs; an empty bucket refuses the attempt (the caller answers 429 with
//! the time until a token is back). A correct password gives the address its token
//! back and refills its pair, so only failures count. Taking the token before
//! verifying, not after failing, bounds a flood of parallel attempts too (a
//! verification in flight holds its tokens until it is settled).
//!
//! Invariant: nothing here is keyed by account alone, so failures from one address
//! can never refuse a login from another address; a real user is locked out only
//! by failures made from their own address. A guesser spread over many addresses
//! gets each address's budget, no more; this module never locks an account.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many remembered buckets, full ones are forgotten (a full bucket is
/// the same as none).
const PRUNE_ABOVE: usize = 4096;

/// Size and refill rate of one kind of bucket.
#[derive(Debug, Clone, Copy)]
pub struct BucketRule {
    /// Attempts allowed in a burst.
    pub burst: u32,
    /// One attempt comes back per this time.
    pub refill: Duration,
}

/// Why an attempt was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too many failed logins from this address (whatever the accounts).
    Address { retry_after: Duration },
    /// Too many failed logins for this account from this address.
    Account { retry_after: Duration },
}

impl Throttled {
    /// How long until an attempt would be accepted again.
    pub fn retry_after(self) -> Duration {
        match self {
            Throttled::Address { retry_after } | Throttled::Account { retry_after } => retry_after,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rule: BucketRule, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rule.burst),
            updated: now,
        }
    }

    /// Adds what refilled since the last update.
    fn refill(&mut self, rule: BucketRule, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed / rule.refill.as_secs_f64()).min(f64::from(rule.burst));
        self.updated = now;
    }

    /// The wait until one token is there (zero if there is one).
    fn wait(&self, rule: BucketRule) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            rule.refill.mul_f64(1.0 - self.tokens)
        }
    }

    fn is_full(&self, rule: BucketRule) -> bool {
        self.tokens >= f64::from(rule.burst)
    }
}

#[derive(Default)]
struct Buckets {
    addresses: HashMap<IpAddr, Bucket>,
    pairs: HashMap<(String, IpAddr), Bucket>,
}

/// The failed-login limits of a node.
pub struct LoginThrottle {
    per_address: BucketRule,
    per_pair: BucketRule,
    buckets: Mutex<Buckets>,
}

impl LoginThrottle {
    /// Limits with these rules.
    pub fn new(per_address: BucketRule, per_pair: BucketRule) -> LoginThrottle {
        LoginThrottle {
            per_address,
            per_pair,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Takes the tokens for one verification of `username`'s password from
    /// `address`, or says which limit refuses it. Settle the attempt with
    /// [`LoginThrottle::succeeded`] when the password was right.
    /// `Ok(true)` when this attempt took the last token of either bucket (worth
    /// one log line if it fails).
    pub fn begin(&self, username: &str, address: IpAddr) -> Result<bool, Throttled> {
        self.begin_at(username, address, Instant::now())
    }

    fn begin_at(&self, username: &str, address: IpAddr, now: Instant) -> Result<bool, Throttled> {
        let (per_address, per_pair) = (self.per_address, self.per_pair);
        let mut buckets = self.buckets.lock().expect("login throttle lock");
        if buckets.addresses.len() + buckets.pairs.len() > PRUNE_ABOVE {
            buckets.prune(per_address, per_pair, now);
        }
        let Buckets { addresses, pairs } = &mut *buckets;
        let by_address = addresses
            .entry(address)
            .or_insert_with(|| Bucket::full(per_address, now));
        by_address.refill(per_address, now);
        let wait = by_address.wait(per_address);
        if !wait.is_zero() {
            return Err(Throttled::Address { retry_after: wait });
        }
        let by_pair = pairs
            .entry((username.to_string(), address))
            .or_insert_with(|| Bucket::full(per_pair, now));
        by_pair.refill(per_pair, now);
        let wait = by_pair.wait(per_pair);
        if !wait.is_zero() {
            return Err(Throttled::Account { retry_after: wait });
        }
        by_address.tokens -= 1.0;
        by_pair.tokens -= 1.0;
        Ok(by_address.tokens < 1.0 || by_pair.tokens < 1.0)
    }

    /// The password of an attempt begun with [`LoginThrottle::begin`] was right:
    /// the address gets its token back and the pair is forgiven its failures.
    pub fn succeeded(&self, username: &str, address: IpAddr) {
        let mut buckets = self.buckets.lock().expect("login throttle lock");
        if let Some(bucket) = buckets.addresses.get_mut(&address) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.per_address.burst));
        }
        buckets.pairs.remove(&(username.to_string(), address));
    }
}

impl Buckets {
    fn prune(&mut self, per_address: BucketRule, per_pair: BucketRule, now: Instant) {
        self.addresses.retain(|_, bucket| {
            bucket.refill(per_address, now);
            !bucket.is_full(per_address)
        });
        self.pairs.retain(|_, bucket| {
            bucket.refill(per_pair, now);
            !bucket.is_full(per_pair)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(
            BucketRule {
                burst: 5,
                refill: Duration::from_secs(10),
            },
            BucketRule {
                burst: 3,
                refill: Duration::from_secs(60),
            },
        )
    }

    #[test]
    fn a_pair_runs_out_first_and_refills_over_time() {
        let throttle = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            throttle.begin_at("ann", A, now).unwrap();
        }
        assert_eq!(
            throttle.begin_at("ann", A, now),
            Err(Throttled::Account {
                retry_after: Duration::from_secs(60)
            })
        );
        // Another address, and another account from the same address, still may.
        throttle.begin_at("ann", B, now).unwrap();
        throttle.begin_at("bob", A, now).unwrap();
        let later = now + Duration::from_secs(30);
        assert_eq!(
            throttle
                .begin_at("ann", A, later)
                .unwrap_err()
                .retry_after(),
            Duration::from_secs(30)
        );
        throttle
            .begin_at("ann", A, now + Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn an_address_runs_out_across_accounts() {
        let throttle = throttle();
        let now = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            throttle.begin_at(name, A, now).unwrap();
        }
        assert!(matches!(
            throttle.begin_at("f", A, now),
            Err(Throttled::Address { .. })
        ));
        throttle.begin_at("f", B, now).unwrap();
    }

    #[test]
    fn a_right_password_costs_nothing() {
        let throttle = throttle();
        let now = Instant::now();
        for _ in 0..20 {
            throttle.begin_at("ann", A, now).unwrap();
            throttle.succeeded("ann", A);
        }
        throttle.begin_at("ann", A, now).unwrap();
    }
}
