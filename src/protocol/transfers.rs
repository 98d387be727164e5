//! `admin/transfers/summary` (quire, ADMIN): outgoing transfers per peer, and one
//! peer's recent transfers.

use serde::{Deserialize, Serialize};

use crate::model::{Timestamp, TransferStatus};

/// `admin/transfers/summary` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TransferSummaryRequest {
    /// Also list this peer's recent transfers and conflicts.
    #[serde(default)]
    pub librarian_name: Option<String>,
    /// Most transfers listed (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// One peer's outgoing transfers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerTransferSummary {
    pub librarian_name: String,
    /// `false` when the peer is not (or no longer) registered.
    pub known: bool,
    pub transfers_enabled: bool,
    /// Most bytes per second sent to the peer, if capped.
    pub max_rate: Option<u64>,
    /// Waiting for their bytes to move (INITIATED, or ONGOING and not yet moved).
    pub queued: Tally,
    /// Moved, not yet reported STAGED to the peer.
    pub in_flight: Tally,
    /// STAGED: at the peer, waiting to be stored there.
    pub staged: Tally,
    pub completed: Tally,
    /// FAILED or CANCELLED.
    pub failed: Tally,
    /// Bytes per second moved to the peer over the last minute.
    pub rate_last_minute: f64,
    pub last_failure: Option<String>,
    pub last_failure_time: Option<Timestamp>,
}

/// One outgoing transfer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingTransferItem {
    pub id: u64,
    pub file_name: String,
    pub size: u64,
    pub status: TransferStatus,
    pub start_time: Timestamp,
    pub end_time: Option<Timestamp>,
    pub destination_transfer_id: Option<u64>,
    /// How its bytes travel (`local` or `quire_http`), once queued.
    pub provider: Option<String>,
    /// Why it failed, when this node knows.
    pub failure: Option<String>,
}

/// A file the peer holds with other bytes under the same name: not sent again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendConflict {
    pub file_name: String,
    pub reason: String,
}

/// `admin/transfers/summary` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferSummaryResponse {
    pub peers: Vec<PeerTransferSummary>,
    /// The asked peer's transfers, newest first.
    #[serde(default)]
    pub transfers: Vec<OutgoingTransferItem>,
    #[serde(default)]
    pub conflicts: Vec<SendConflict>,
}
