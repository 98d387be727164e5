//! `clone/complete`: the destination of a clone reports that its copy is stored.

use std::sync::Arc;

use super::{CloneError, Requester};
use crate::db::repo::{instances, librarians, next_id, transfers};
use crate::db::{DbError, WriteTxn};
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
    if !found.is_some_and(|t| requester.owns_outgoing(&t)) {
        return Err(CloneError::TransferNotFound(id));
    }
    let sender = node.config.name.clone();
    node.db
        .write(move |txn| complete_in(txn, &sender, id, destination_transfer_id, store_id))
        .await
}

/// Many `clone/complete`s of one caller in one transaction (quire's
/// `clone/batch_complete`): each is checked and recorded as a single one would
/// be, and answered on its own, in order.
pub async fn complete_outgoing_batch(
    node: &Arc<Node>,
    requester: Requester<'_>,
    completions: Vec<(i64, i64, i64)>,
) -> Result<Vec<Result<RemoteInstance, CloneError>>, CloneError> {
    let sender = node.config.name.clone();
    let username = requester.username.to_string();
    let admin = requester.admin;
    node.db
        .write(move |txn| {
            let requester = Requester {
                username: &username,
                admin,
            };
            let mut results = Vec::with_capacity(completions.len());
            for (source, destination, store) in completions {
                let owned = u64::try_from(source)
                    .ok()
                    .map(|key| transfers::get_outgoing(txn, key))
                    .transpose()?
                    .flatten()
                    .is_some_and(|t| requester.owns_outgoing(&t));
                if !owned {
                    results.push(Err(CloneError::TransferNotFound(source)));
                    continue;
                }
                results.push(complete_in(txn, &sender, source, destination, store)?);
            }
            Ok(Ok::<_, CloneError>(results))
        })
        .await
}

/// ONGOING or STAGED -> COMPLETED with a remote instance, inside a write job.
fn complete_in(
    txn: &WriteTxn,
    sender: &str,
    id: i64,
    destination_transfer_id: i64,
    store_id: i64,
) -> Result<Result<RemoteInstance, CloneError>, DbError> {
    let Some(mut transfer) = u64::try_from(id)
        .ok()
        .map(|key| transfers::get_outgoing(txn, key))
        .transpose()?
        .flatten()
    else {
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
        sender: sender.to_string(),
    };
    transfers::put_outgoing(txn, &transfer)?;
    instances::put_remote(txn, &remote)?;
    Ok(Ok(remote))
}
