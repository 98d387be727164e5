//! Callbacks this node owes to the librarians that cloned files to it.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// What the source librarian must be told about one of its clones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackKind {
    /// The copy is stored here: `clone/complete`.
    Complete,
    /// The copy could not be stored: `checkin/update` to FAILED.
    Fail,
}

/// A callback that is owed until the source librarian has heard it. It is recorded
/// in the same transaction that completes or fails the incoming transfer, so a
/// crash or an unreachable peer can delay the callback but never lose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwedCallback {
    /// The incoming transfer the callback is about (it names the peer and the ids).
    pub transfer_id: u64,
    pub kind: CallbackKind,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_attempt: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}
