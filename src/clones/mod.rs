//! Clones between librarians: the state changes peers ask of this node's transfers
//! (`clone/*`, `checkin/*`), store manifests for SneakerNet drives, and the
//! callbacks owed to sources once their clones are stored here.
//!
//! Invariant: a transfer only moves along the protocol's status machine, and only
//! at the request of its owner (see `access`) or an administrator; the staging of
//! an incoming transfer that becomes FAILED or CANCELLED is removed.

mod access;
mod checkin;
mod error;
mod incoming;
mod manifest;
mod outgoing;
mod summary;

pub use access::Requester;
pub use checkin::{status_of, update_transfers};
pub use error::CloneError;
pub use incoming::{fail_incoming, mark_ongoing, mark_staged};
pub use manifest::{ManifestOptions, build_manifest};
pub use outgoing::{complete_outgoing, complete_outgoing_batch};
pub use summary::summarize;
