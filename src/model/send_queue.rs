//! The send queue: batches of outgoing clones whose destination has staged them,
//! waiting for their bytes to be moved (`consume_queue`) and their arrival to be
//! reported (`check_consumed_queue`).

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// How a batch's bytes travel to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendProvider {
    /// Copied into the destination's staging on a filesystem both hosts share.
    Local,
    /// Streamed into the destination's staging over HTTP(S), resumably.
    QuireHttp,
}

impl SendProvider {
    /// The provider's name in `async_transfer_providers`.
    pub fn wire_name(self) -> &'static str {
        match self {
            SendProvider::Local => "local",
            SendProvider::QuireHttp => "quire_http",
        }
    }
}

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendState {
    /// Waiting for `consume_queue` (again, after a failed attempt).
    Queued,
    /// Every byte is at the destination; `check_consumed_queue` reports it.
    Moved,
    /// The destination was told its transfers are STAGED.
    Done,
    /// Given up after `max_async_send_retries`, or refused for good.
    Failed,
}

impl SendState {
    /// Queued and moved batches still need work.
    pub fn is_live(self) -> bool {
        matches!(self, SendState::Queued | SendState::Moved)
    }

    /// Upper-case name for listings.
    pub fn name(self) -> &'static str {
        match self {
            SendState::Queued => "QUEUED",
            SendState::Moved => "MOVED",
            SendState::Done => "DONE",
            SendState::Failed => "FAILED",
        }
    }
}

/// One file of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendItem {
    pub outgoing_id: u64,
    /// The destination's incoming transfer for this file.
    pub destination_transfer_id: u64,
    pub file_name: String,
    pub size: u64,
    /// Where the destination expects the bytes (`local`: an absolute path on the
    /// shared filesystem; `quire_http`: informative only).
    pub staging_location: String,
    /// Set when this file alone failed (its transfer is FAILED); the rest of the
    /// batch goes on.
    pub failure: Option<String>,
}

/// A batch of clones to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendQueueItem {
    pub id: u64,
    /// Higher first; then older first.
    pub priority: i64,
    pub created: Timestamp,
    pub destination: String,
    pub provider: SendProvider,
    pub items: Vec<SendItem>,
    pub state: SendState,
    /// Failed attempts so far.
    pub retries: u32,
    /// No attempt before this time (back-off after a failure).
    pub not_before: Timestamp,
    /// Why the last attempt failed (or why the batch failed).
    pub last_failure: Option<String>,
    /// Bytes that reached the destination, counted by the last attempt.
    pub bytes_moved: u64,
    /// When the bytes were all moved, and when the batch ended.
    pub moved_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
}

impl SendQueueItem {
    /// Bytes of the batch's files that have not failed on their own.
    pub fn total_bytes(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| i.failure.is_none())
            .map(|i| i.size)
            .sum()
    }
}
