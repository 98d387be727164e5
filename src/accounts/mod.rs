//! Accounts: argon2 password hashes, generated passwords, and the short-lived cache
//! of verified credentials that spares all but a client's first request the cost of
//! argon2.

mod cache;
mod password;

pub use cache::CredentialCache;
pub use password::{generate_password, hash_password, verify_password};
