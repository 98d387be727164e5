//! `clone/complete`: the destination of a clone reports that its copy is stored.

use std::sync::Arc;

use super::{CloneError, Requester};
use crate::db::repo::{instances, librarians, next_id, transfers};
use crate::model::{RemoteInstance, Timestamp, TransferStatus};
use crate::node::Node;

/// ONGOING or STAGED -> COMPLETED, recording that the destination holds the file
/// in its store `store_id`. Refused, with nothing changed, when the destination is
/// not a known peer, so that it can be added and the callback repeated.
pub async fn complete_outgoing(
    node: &Arc<Node>,
    requester: Requester<'_>,
    source_transfer_id: i64,
    destination_transfer_id: i64,
    store_id: i64,
) -> Result<RemoteInstance, CloneError> {
    let id = source_transfer_id;
    let Ok(key) = u64::try_from(id) else {
        return Err(CloneError::TransferNotFound(id));
    };
    let found = node.db.read(|tx| transfers::get_outgoing(tx, key))?;
    let Some(transfer) = found.filter(|t| requester.owns_outgoing(t)) else {
        return Err(CloneError::TransferNotFound(id));
    };
    let sender = node.config.name.clone();
    node.db
        .write(move |txn| {
            let Some(mut transfer) = transfers::get_outgoing(txn, transfer.id)? else {
                return Ok(Err(CloneError::TransferNotFound(id)));
            };
            if !matches!(
                transfer.status,
                TransferStatus::Ongoing | TransferStatus::Staged
            ) {
                return Ok(Err(CloneError::WrongStatus {
                    id,
                    found: transfer.status,
                    expected: "ONGOING or STAGED",
                }));
            }
            if librarians::get_librarian(txn, &transfer.destination)?.is_none() {
                return Ok(Err(CloneError::UnknownLibrarian(transfer.destination)));
            }
            let now = Timestamp::now();
            transfer.status = TransferStatus::Completed;
            transfer.end_time = Some(now);
            transfer.remote_transfer_id = u64::try_from(destination_transfer_id).ok();
            let remote = RemoteInstance {
                id: next_id(txn, "remote_instances")?,
                file_name: transfer.file_name.clone(),
                librarian_name: transfer.destination.clone(),
                store_id: u64::try_from(store_id).unwrap_or_default(),
                copy_time: now,
                sender,
            };
            transfers::put_outgoing(txn, &transfer)?;
            instances::put_remote(txn, &remote)?;
            Ok(Ok(remote))
        })
        .await
}
