//! Callbacks owed to source librarians, keyed by incoming transfer id.

use super::{all_by_id, get, put};
use crate::db::tables::OWED_CALLBACKS;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{CallbackKind, OwedCallback};

/// Records that the source of incoming transfer `transfer_id` must hear `kind`.
/// Owing again replaces an earlier record of the same transfer.
pub fn owe(txn: &WriteTxn, transfer_id: u64, kind: CallbackKind) -> Result<(), DbError> {
    let owed = OwedCallback {
        transfer_id,
        kind,
        attempts: 0,
        last_attempt: None,
        last_error: None,
    };
    put(txn, OWED_CALLBACKS, transfer_id, &owed)
}

/// The callback owed for `transfer_id`, if any.
pub fn get_owed(tx: &impl Reads, transfer_id: u64) -> Result<Option<OwedCallback>, DbError> {
    get(tx, OWED_CALLBACKS, transfer_id)
}

/// Every owed callback, oldest transfer first.
pub fn all_owed(tx: &impl Reads) -> Result<Vec<OwedCallback>, DbError> {
    all_by_id(tx, OWED_CALLBACKS)
}

/// Rewrites an owed callback (after a failed attempt).
pub fn put_owed(txn: &WriteTxn, owed: &OwedCallback) -> Result<(), DbError> {
    put(txn, OWED_CALLBACKS, owed.transfer_id, owed)
}

/// Forgets the callback of `transfer_id`: it was delivered, or can never be.
pub fn settle(txn: &WriteTxn, transfer_id: u64) -> Result<(), DbError> {
    txn.open_table(OWED_CALLBACKS)?.remove(transfer_id)?;
    Ok(())
}
