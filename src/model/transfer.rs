//! Transfers into this node (uploads and clones from peers) and out of it (clones
//! to peers), with the protocol's status machine.

use serde::{Deserialize, Serialize};

use super::{Algorithm, Checksum, Timestamp};

/// Where a transfer is in its life. On the wire it is the integer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum TransferStatus {
    Initiated,
    Ongoing,
    Staged,
    Completed,
    Failed,
    Cancelled,
}

impl TransferStatus {
    /// Every status, in wire order.
    pub const ALL: [TransferStatus; 6] = [
        TransferStatus::Initiated,
        TransferStatus::Ongoing,
        TransferStatus::Staged,
        TransferStatus::Completed,
        TransferStatus::Failed,
        TransferStatus::Cancelled,
    ];

    /// The protocol's integer for this status.
    pub fn wire_value(self) -> i64 {
        match self {
            TransferStatus::Initiated => 0,
            TransferStatus::Ongoing => 1,
            TransferStatus::Staged => 2,
            TransferStatus::Completed => 3,
            TransferStatus::Failed => 4,
            TransferStatus::Cancelled => 5,
        }
    }

    /// Completed, failed and cancelled transfers never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TransferStatus::Completed | TransferStatus::Failed | TransferStatus::Cancelled
        )
    }

    /// The transitions `checkin/update` may make.
    pub fn may_become(self, next: TransferStatus) -> bool {
        use TransferStatus::*;
        match self {
            Initiated => matches!(next, Ongoing | Staged | Failed | Cancelled),
            Ongoing => matches!(next, Staged | Failed | Cancelled),
            Staged => matches!(next, Failed | Cancelled),
            Completed | Failed | Cancelled => false,
        }
    }

    /// Upper-case name, as the reference prints it.
    pub fn name(self) -> &'static str {
        match self {
            TransferStatus::Initiated => "INITIATED",
            TransferStatus::Ongoing => "ONGOING",
            TransferStatus::Staged => "STAGED",
            TransferStatus::Completed => "COMPLETED",
            TransferStatus::Failed => "FAILED",
            TransferStatus::Cancelled => "CANCELLED",
        }
    }
}

impl TryFrom<i64> for TransferStatus {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        TransferStatus::ALL
            .into_iter()
            .find(|status| status.wire_value() == value)
            .ok_or_else(|| format!("{value} is not a transfer status (0 to 5)"))
    }
}

impl From<TransferStatus> for i64 {
    fn from(status: TransferStatus) -> i64 {
        status.wire_value()
    }
}

/// Bytes on their way into one of this node's stores: an upload from a client, or a
/// clone sent by a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingTransfer {
    pub id: u64,
    pub status: TransferStatus,
    /// The account that staged the transfer.
    pub uploader: String,
    /// The librarian the file comes from.
    pub source: String,
    pub transfer_size: u64,
    pub transfer_checksum: Checksum,
    pub store_id: u64,
    /// Name of the staging directory, `<staging>/<staging_name>/`.
    pub staging_name: String,
    pub upload_name: String,
    /// The file's name once committed.
    pub destination_location: String,
    pub start_time: Timestamp,
    pub end_time: Option<Timestamp>,
    /// The sender's id for this transfer when it is a clone from a peer.
    pub source_transfer_id: Option<u64>,
    /// When set, the file is recorded with a checksum of this algorithm, computed by
    /// this node while it verifies the declared `transfer_checksum`.
    pub record_algorithm: Option<Algorithm>,
}

/// A copy of one of this node's files on its way to a peer librarian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingTransfer {
    pub id: u64,
    pub status: TransferStatus,
    /// The peer librarian receiving the copy.
    pub destination: String,
    pub file_name: String,
    pub transfer_size: u64,
    pub transfer_checksum: Checksum,
    pub source_path: String,
    pub start_time: Timestamp,
    pub end_time: Option<Timestamp>,
    /// The peer's id for the matching incoming transfer, once known.
    pub remote_transfer_id: Option<u64>,
}

impl OutgoingTransfer {
    /// A new transfer `id` of `file`, read from `instance`, to `destination`,
    /// starting now in `status`.
    pub fn of_copy(
        id: u64,
        status: TransferStatus,
        destination: &str,
        file: &super::File,
        instance: &super::Instance,
        now: Timestamp,
    ) -> OutgoingTransfer {
        OutgoingTransfer {
            id,
            status,
            destination: destination.to_string(),
            file_name: file.name.clone(),
            transfer_size: file.size,
            transfer_checksum: file.checksum.clone(),
            source_path: instance.path.clone(),
            start_time: now,
            end_time: None,
            remote_transfer_id: None,
        }
    }
}
