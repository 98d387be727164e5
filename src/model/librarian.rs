//! Peer librarians this node knows.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A peer librarian. Its credentials are sealed (encrypted) with a key kept outside
/// the database; only the peer client unseals them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Librarian {
    pub id: u64,
    pub name: String,
    /// Scheme and host, without the port (`https://peer.example.org`).
    pub url: String,
    pub port: u16,
    pub sealed_authenticator: Vec<u8>,
    pub last_seen: Option<Timestamp>,
    pub transfers_enabled: bool,
}
