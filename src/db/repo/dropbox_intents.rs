//! Drop-box batches in flight (see `model::DropboxIntent`).

use super::{all_by_id, put};
use crate::db::tables::DROPBOX_INTENTS;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::DropboxIntent;

/// Records a batch about to place files in a store.
pub fn put_intent(txn: &WriteTxn, intent: &DropboxIntent) -> Result<(), DbError> {
    put(txn, DROPBOX_INTENTS, intent.id, intent)
}

/// Forgets a batch: its files are recorded, or were taken back.
pub fn delete_intent(txn: &WriteTxn, id: u64) -> Result<(), DbError> {
    txn.open_table(DROPBOX_INTENTS)?.remove(id)?;
    Ok(())
}

/// Every batch still in flight, oldest first.
pub fn all_intents(tx: &impl Reads) -> Result<Vec<DropboxIntent>, DbError> {
    all_by_id(tx, DROPBOX_INTENTS)
}
