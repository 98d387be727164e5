//! Why a clone or check-in request was refused. The HTTP layer words each case the
//! way the reference does, since clients match on those reasons.

use crate::db::DbError;
use crate::model::TransferStatus;

/// A refused clone, check-in or manifest request.
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    /// No such transfer, or not one the caller may change (the two look alike, so
    /// that ids of other peers' transfers reveal nothing).
    #[error("no transfer {0} that this account may change")]
    TransferNotFound(i64),
    /// The transfer is not in a status the request may move it from.
    #[error("transfer {id} is {} (expected {expected})", found.name())]
    WrongStatus {
        id: i64,
        found: TransferStatus,
        expected: &'static str,
    },
    /// The destination of an outgoing transfer is not a known peer.
    #[error("librarian {0} is not known here")]
    UnknownLibrarian(String),
    /// No store of that name.
    #[error("store {0} does not exist")]
    UnknownStore(String),
    #[error(transparent)]
    Db(#[from] DbError),
}
