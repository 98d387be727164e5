//! Delivering the callbacks `recieve_clone` owes: `clone/complete` for a stored
//! clone, `checkin/update` to FAILED for a failed one, sent to the librarian named
//! by the transfer's source or uploader, whichever is a known peer (the reference's
//! manifest ingest puts the sending librarian in `uploader`).
//!
//! A callback stays owed (with its attempt count and last error) while the peer is
//! unknown, unreachable or failing (5xx); it is settled once the peer answers, even
//! with a refusal, since repeating a refused call cannot change the answer.

use std::collections::{BTreeMap, HashMap};

use super::TaskContext;
use crate::db::DbError;
use crate::db::repo::{callbacks, transfers};
use crate::model::{CallbackKind, IncomingTransfer, OwedCallback, Timestamp, TransferStatus};
use crate::peer::registry::{client_for_peer, known_peer};
use crate::peer::{LibrarianClient, PeerError};
use crate::protocol::checkin::CheckinUpdateRequest;
use crate::protocol::clone::CloneCompleteRequest;

/// What became of one owed callback in this run.
enum Delivery {
    Delivered,
    /// The peer answered with a refusal; the callback is settled.
    Refused(String),
    /// Nobody can be called back for this transfer; the callback is settled.
    Nobody(String),
    /// Not delivered now; stays owed. `peer` is set when the peer was unreachable,
    /// so that its other callbacks wait for the next run.
    Later {
        peer: Option<String>,
        why: String,
    },
}

/// Delivers every owed callback, checking `keep_going` between them.
pub fn deliver_owed(context: &TaskContext) -> anyhow::Result<()> {
    let node = context.node();
    let owed = node.db.read(callbacks::all_owed)?;
    let mut clients: HashMap<String, LibrarianClient> = HashMap::new();
    let mut unreachable: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for callback in owed {
        if !context.keep_going() {
            break;
        }
        let Some(transfer) = node
            .db
            .read(|tx| transfers::get_incoming(tx, callback.transfer_id))?
        else {
            settle(context, &callback)?;
            continue;
        };
        let peer = known_peer(node, &[&transfer.source, &transfer.uploader])?;
        if let Some(peer) = &peer
            && let Some((waiting, _)) = unreachable.get_mut(&peer.name)
        {
            *waiting += 1;
            continue;
        }
        let delivery = match peer {
            None => Delivery::Later {
                peer: None,
                why: format!(
                    "no known librarian is called '{}' or '{}'; add the source librarian as a \
                     peer",
                    transfer.source, transfer.uploader
                ),
            },
            Some(peer) => {
                let client = match clients.get(&peer.name) {
                    Some(client) => Ok(client.clone()),
                    None => client_for_peer(node, &peer),
                };
                match client {
                    Ok(client) => {
                        clients.insert(peer.name.clone(), client.clone());
                        context.block_on(send(&client, &callback, &transfer, &peer.name))
                    }
                    Err(error) => Delivery::Later {
                        peer: None,
                        why: error.to_string(),
                    },
                }
            }
        };
        match delivery {
            Delivery::Delivered => {
                settle(context, &callback)?;
                context.item_done();
            }
            Delivery::Refused(why) | Delivery::Nobody(why) => {
                settle(context, &callback)?;
                context.item_failed(why);
            }
            Delivery::Later { peer, why } => {
                if callback.attempts == 0 {
                    context.item_failed(format!(
                        "the callback for clone {} of '{}' waits: {why}",
                        transfer.id, transfer.destination_location
                    ));
                }
                record_attempt(context, callback, &why)?;
                if let Some(peer) = peer {
                    unreachable.insert(peer, (0, why));
                }
            }
        }
    }
    for (peer, (waiting, why)) in unreachable {
        if waiting > 0 {
            context.item_failed(format!(
                "{waiting} more callbacks to {peer} wait for the next run: {why}"
            ));
        }
    }
    Ok(())
}

/// Sends one callback to `peer`.
async fn send(
    client: &LibrarianClient,
    callback: &OwedCallback,
    transfer: &IncomingTransfer,
    peer: &str,
) -> Delivery {
    let Some(source_transfer_id) = transfer.source_transfer_id else {
        return Delivery::Nobody(format!(
            "clone {} has no source transfer to call back",
            transfer.id
        ));
    };
    let source_transfer_id = source_transfer_id as i64;
    let answer = match callback.kind {
        CallbackKind::Complete => {
            let request = CloneCompleteRequest {
                source_transfer_id,
                destination_transfer_id: transfer.id as i64,
                store_id: transfer.store_id as i64,
            };
            client.clone_complete(&request).await.map(|_| None)
        }
        CallbackKind::Fail => {
            let request = CheckinUpdateRequest {
                source_transfer_ids: vec![source_transfer_id],
                destination_transfer_ids: Vec::new(),
                new_status: TransferStatus::Failed,
            };
            client.checkin_update(&request).await.map(|answer| {
                (!answer
                    .modified_source_transfer_ids
                    .contains(&source_transfer_id))
                .then(|| answer.reasons.join(" "))
            })
        }
    };
    match answer {
        Ok(None) => Delivery::Delivered,
        Ok(Some(reasons)) => Delivery::Refused(format!(
            "{peer} did not fail its transfer {source_transfer_id}: {reasons}"
        )),
        Err(error) if error.is_transient() => Delivery::Later {
            peer: matches!(error, PeerError::Unreachable { .. }).then(|| peer.to_string()),
            why: error.to_string(),
        },
        Err(error) => Delivery::Refused(format!(
            "{peer} refused the callback for its transfer {source_transfer_id}: {error}"
        )),
    }
}

fn settle(context: &TaskContext, callback: &OwedCallback) -> Result<(), DbError> {
    let id = callback.transfer_id;
    context
        .node()
        .db
        .write_blocking(move |txn| Ok(Ok::<_, DbError>(callbacks::settle(txn, id)?)))
}

fn record_attempt(
    context: &TaskContext,
    mut callback: OwedCallback,
    why: &str,
) -> Result<(), DbError> {
    callback.attempts += 1;
    callback.last_attempt = Some(Timestamp::now());
    callback.last_error = Some(why.to_string());
    context
        .node()
        .db
        .write_blocking(move |txn| Ok(Ok::<_, DbError>(callbacks::put_owed(txn, &callback)?)))
}
