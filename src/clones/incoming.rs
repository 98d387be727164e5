//! `clone/ongoing`, `clone/staged` and `clone/fail`: the sender of a clone moves
//! the incoming transfer it started here.

use std::sync::Arc;

use super::{CloneError, Requester};
use crate::db::repo::transfers;
use crate::ingest::transfer_state::discard_staging_of;
use crate::model::{IncomingTransfer, Timestamp, TransferStatus};
use crate::node::Node;

/// INITIATED -> ONGOING: the sender has started copying.
pub async fn mark_ongoing(
    node: &Arc<Node>,
    requester: Requester<'_>,
    id: i64,
) -> Result<(), CloneError> {
    advance(
        node,
        requester,
        id,
        TransferStatus::Initiated,
        TransferStatus::Ongoing,
    )
    .await
}

/// ONGOING -> STAGED: the bytes are in staging; `recieve_clone` will store them.
pub async fn mark_staged(
    node: &Arc<Node>,
    requester: Requester<'_>,
    id: i64,
) -> Result<(), CloneError> {
    advance(
        node,
        requester,
        id,
        TransferStatus::Ongoing,
        TransferStatus::Staged,
    )
    .await
}

async fn advance(
    node: &Arc<Node>,
    requester: Requester<'_>,
    id: i64,
    from: TransferStatus,
    to: TransferStatus,
) -> Result<(), CloneError> {
    let Some(mut transfer) = owned(node, requester, id)? else {
        return Err(CloneError::TransferNotFound(id));
    };
    node.db
        .write(move |txn| {
            // Read again inside the write: the status may have changed meanwhile.
            let Some(current) = transfers::get_incoming(txn, transfer.id)? else {
                return Ok(Err(CloneError::TransferNotFound(id)));
            };
            if current.status != from {
                return Ok(Err(CloneError::WrongStatus {
                    id,
                    found: current.status,
                    expected: from.name(),
                }));
            }
            transfer = current;
            transfer.status = to;
            transfers::put_incoming(txn, &transfer)?;
            Ok(Ok(()))
        })
        .await
}

/// Any live status -> FAILED, and its staging removed. Failing a transfer that is
/// already FAILED or CANCELLED changes nothing and succeeds; a COMPLETED transfer
/// cannot fail (its file is stored).
pub async fn fail_incoming(
    node: &Arc<Node>,
    requester: Requester<'_>,
    id: i64,
) -> Result<(), CloneError> {
    if owned(node, requester, id)?.is_none() {
        return Err(CloneError::TransferNotFound(id));
    }
    let failed = node
        .db
        .write(move |txn| {
            let Some(mut transfer) = transfers::get_incoming(txn, id as u64)? else {
                return Ok(Err(CloneError::TransferNotFound(id)));
            };
            match transfer.status {
                TransferStatus::Completed => {
                    return Ok(Err(CloneError::WrongStatus {
                        id,
                        found: transfer.status,
                        expected: "not yet COMPLETED",
                    }));
                }
                status if status.is_terminal() => return Ok(Ok(None)),
                _ => {}
            }
            transfer.status = TransferStatus::Failed;
            transfer.end_time = Some(Timestamp::now());
            transfers::put_incoming(txn, &transfer)?;
            Ok(Ok(Some(transfer)))
        })
        .await?;
    discard(node, failed.into_iter().collect()).await;
    Ok(())
}

/// The incoming transfer `id`, if it exists and `requester` may change it.
fn owned(
    node: &Node,
    requester: Requester<'_>,
    id: i64,
) -> Result<Option<IncomingTransfer>, CloneError> {
    let Ok(key) = u64::try_from(id) else {
        return Ok(None);
    };
    let transfer = node.db.read(|tx| transfers::get_incoming(tx, key))?;
    Ok(transfer.filter(|t| requester.owns_incoming(t)))
}

/// Removes the staging of transfers that closed without their file.
pub(super) async fn discard(node: &Arc<Node>, closed: Vec<IncomingTransfer>) {
    if closed.is_empty() {
        return;
    }
    let node = node.clone();
    let _ = tokio::task::spawn_blocking(move || discard_staging_of(&node, &closed)).await;
}
