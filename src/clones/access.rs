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
