//! Batch uploads in flight (see `model::UploadIntent`).

use super::{all_by_id, put};
use crate::db::tables::UPLOAD_INTENTS;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::UploadIntent;

/// Records a batch about to name files in a store.
pub fn put_intent(txn: &WriteTxn, intent: &UploadIntent) -> Result<(), DbError> {
    put(txn, UPLOAD_INTENTS, intent.id, intent)
}

/// Forgets a batch: its files are recorded, or were taken back.
pub fn delete_intent(txn: &WriteTxn, id: u64) -> Result<(), DbError> {
    txn.open_table(UPLOAD_INTENTS)?.remove(id)?;
    Ok(())
}

/// Every batch still in flight, oldest first.
pub fn all_intents(tx: &impl Reads) -> Result<Vec<UploadIntent>, DbError> {
    all_by_id(tx, UPLOAD_INTENTS)
}
