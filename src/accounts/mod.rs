//! Accounts: argon2 password hashes, generated passwords, the short-lived cache
//! of verified credentials that spares all but a client's first request the cost of
//! argon2, the limits on failed logins, and the key that seals the credentials this
//! node uses with its peers.

mod cache;
mod password;
mod peer_key;
mod peer_keyring;
mod throttle;
mod verifier;

pub use cache::{CredentialCache, VerificationGate};
pub use password::{generate_password, hash_password, verify_password};
pub use peer_key::{PeerKey, PeerKeyError, key_file_is_exposed};
pub use peer_keyring::PeerKeyring;
pub use throttle::{BucketRule, LoginThrottle, Throttled};
pub use verifier::Verifier;
