//! Closing incoming transfers that cannot complete, and removing their staging.

use crate::db::repo::transfers;
use crate::db::{DbError, WriteTxn};
use crate::model::{IncomingTransfer, Timestamp, TransferStatus};
use crate::node::Node;

/// Marks a live transfer FAILED inside a write job; returns it if it changed.
pub fn fail_in(txn: &WriteTxn, id: u64) -> Result<Option<IncomingTransfer>, DbError> {
    let Some(mut transfer) = transfers::get_incoming(txn, id)? else {
        return Ok(None);
    };
    if transfer.status.is_terminal() {
        return Ok(None);
    }
    transfer.status = TransferStatus::Failed;
    transfer.end_time = Some(Timestamp::now());
    transfers::put_incoming(txn, &transfer)?;
    Ok(Some(transfer))
}

/// Removes a transfer's staging directory and forgets its staged digests.
pub fn discard_staging(node: &Node, transfer: &IncomingTransfer) {
    node.staged_digests.forget(transfer.id);
    if let Some(store) = node.stores.by_id(transfer.store_id)
        && let Err(error) = store.remove_staging(&transfer.staging_name)
    {
        tracing::warn!(transfer = transfer.id, %error, "cannot remove staging directory");
    }
}

/// Fails a transfer and removes its staged data (used when a commit is refused for
/// good: wrong checksum, name taken, data missing).
pub async fn fail_and_discard(node: &Node, id: u64) -> Result<(), DbError> {
    let failed = node
        .db
        .write(move |txn| Ok(Ok::<_, DbError>(fail_in(txn, id)?)))
        .await?;
    if let Some(transfer) = failed {
        discard_staging(node, &transfer);
    }
    Ok(())
}
