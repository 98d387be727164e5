//! Who may move a transfer. A peer logs in with an account named after it; an
//! administrator may move any transfer.
//!
//! - An incoming transfer belongs to the librarian named as its source or as its
//!   uploader. A clone from a peer names the peer as its source; a SneakerNet
//!   manifest ingest names the manifest's librarian as uploader (the reference
//!   client swaps the two fields), so either name grants access.
//! - An outgoing transfer belongs to its destination.

use crate::model::{IncomingTransfer, OutgoingTransfer};

/// The account asking for a change.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub username: &'a str,
    /// An administrator may change any transfer.
    pub admin: bool,
}

impl Requester<'_> {
    /// Whether this account may change an incoming transfer.
    pub fn owns_incoming(&self, transfer: &IncomingTransfer) -> bool {
        self.admin || transfer.source == self.username || transfer.uploader == self.username
    }

    /// Whether this account may change an outgoing transfer.
    pub fn owns_outgoing(&self, transfer: &OutgoingTransfer) -> bool {
        self.admin || transfer.destination == self.username
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Checksum, Timestamp, TransferStatus};

    fn incoming(source: &str, uploader: &str) -> IncomingTransfer {
        IncomingTransfer {
            id: 1,
            status: TransferStatus::Initiated,
            uploader: uploader.into(),
            source: source.into(),
            transfer_size: 0,
            transfer_checksum: Checksum::parse("md5:::d41d8cd98f00b204e9800998ecf8427e").unwrap(),
            store_id: 1,
            staging_name: "s".into(),
            upload_name: "n".into(),
            destination_location: "n".into(),
            start_time: Timestamp::now(),
            end_time: None,
            source_transfer_id: Some(3),
            record_algorithm: None,
        }
    }

    #[test]
    fn source_uploader_or_admin_own_an_incoming_transfer() {
        let clone = incoming("site-a", "pipeline");
        let manifest_ingest = incoming("instrument", "site-a");
        let peer = Requester {
            username: "site-a",
            admin: false,
        };
        let other = Requester {
            username: "site-c",
            admin: false,
        };
        let admin = Requester {
            username: "root",
            admin: true,
        };
        assert!(peer.owns_incoming(&clone) && peer.owns_incoming(&manifest_ingest));
        assert!(!other.owns_incoming(&clone) && !other.owns_incoming(&manifest_ingest));
        assert!(admin.owns_incoming(&clone));
    }
}
