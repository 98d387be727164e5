//! Runs argon2 verifications: at most one per core at once, and for unknown
//! accounts against a dummy hash made with the same parameters as real ones.
//!
//! Invariants: an unknown account costs the same argon2 work as a wrong password,
//! so the time of an answer does not tell whether an account exists; no lock is
//! held per account while argon2 runs, so failed attempts on one account do not
//! queue behind each other; the semaphore keeps a flood of verifications from
//! taking every blocking thread and core (permits are handed out in arrival order).

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::password::{generate_password, hash_password, verify_password};

/// Verifies passwords on blocking threads, a bounded number at a time.
pub struct Verifier {
    permits: Arc<Semaphore>,
    /// A hash of a random password nobody knows, made by [`hash_password`].
    dummy_hash: String,
}

impl Verifier {
    /// A verifier allowing as many verifications at once as there are cores.
    pub fn new() -> Verifier {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Verifier {
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash: hash_password(&generate_password()),
        }
    }

    /// Whether `password` matches `hash`; with no hash (an unknown account) the
    /// same work is done against the dummy hash and the answer is `false`.
    pub async fn verify(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, tokio::task::JoinError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_string();
        let password = password.to_string();
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the verification semaphore is never closed");
        let matches =
            tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await?;
        Ok(known && matches)
    }
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_account_never_matches() {
        let verifier = Verifier::new();
        let hash = hash_password("pw");
        assert!(verifier.verify("pw", Some(&hash)).await.unwrap());
        assert!(!verifier.verify("other", Some(&hash)).await.unwrap());
        assert!(!verifier.verify("pw", None).await.unwrap());
        // The dummy hash has the parameters of a real one.
        let params = |h: &str| h.rsplitn(3, '$').nth(2).map(str::to_string);
        assert_eq!(params(&verifier.dummy_hash), params(&hash));
    }
}
