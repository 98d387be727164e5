//! Accounts that may call the node.

use serde::{Deserialize, Serialize};

use super::AuthLevel;

/// An account. The password is kept only as an argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    pub level: AuthLevel,
}
