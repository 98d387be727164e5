//! Delivering the callbacks `recieve_clone` owes: `clone/complete` for a stored
//! clone, `checkin/update` to FAILED for a failed one, sent to the librarian named
//! by the transfer's source or uploader, whichever is a known peer (the reference's
//! manifest ingest puts the sending librarian in `uploader`).
//!
//! A callback stays owed (with its attempt count and last error) while the peer is
//! unknown, unreachable or failing (5xx); it is settled once the peer answers, even
//! with a refusal, since repeating a refused call cannot change the answer.

use std::collections::{BTreeMap, HashMap};

use futures_util::{StreamExt, stream};

use super::TaskContext;
use crate::db::DbError;
use crate::db::repo::{callbacks, transfers};
use crate::model::{
    CallbackKind, IncomingTransfer, Librarian, OwedCallback, Timestamp, TransferStatus,
};
use crate::peer::registry::{client_for_peer, known_peer};
use crate::peer::{LibrarianClient, PeerError};
use crate::protocol::checkin::CheckinUpdateRequest;
use crate::protocol::clone::{CloneBatchCompleteRequest, CloneCompleteRequest};

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

/// Callbacks in flight at once to one peer.
const PARALLEL_CALLBACKS: usize = 16;
/// Callbacks whose outcomes are recorded in one transaction.
const CHUNK: usize = 512;

/// Delivers every owed callback, peer by peer, several at once, checking
/// `keep_going` between chunks; the outcomes of a chunk are recorded together.
pub fn deliver_owed(context: &TaskContext) -> anyhow::Result<()> {
    let node = context.node();
    let owed: Vec<(OwedCallback, Option<IncomingTransfer>)> = node.db.read(|tx| {
        let mut all = Vec::new();
        for callback in callbacks::all_owed(tx)? {
            let transfer = transfers::get_incoming(tx, callback.transfer_id)?;
            all.push((callback, transfer));
        }
        Ok(all)
    })?;
    let mut by_peer: BTreeMap<String, Vec<(OwedCallback, IncomingTransfer)>> = BTreeMap::new();
    let mut unknown: Vec<(OwedCallback, IncomingTransfer)> = Vec::new();
    let mut orphans: Vec<u64> = Vec::new();
    let mut peers: HashMap<(String, String), Option<Librarian>> = HashMap::new();
    for (callback, transfer) in owed {
        let Some(transfer) = transfer else {
            orphans.push(callback.transfer_id);
            continue;
        };
        let key = (transfer.source.clone(), transfer.uploader.clone());
        let peer = match peers.get(&key) {
            Some(peer) => peer.clone(),
            None => {
                let found = known_peer(node, &[&transfer.source, &transfer.uploader])?;
                peers.insert(key, found.clone());
                found
            }
        };
        match peer {
            Some(peer) => by_peer
                .entry(peer.name)
                .or_default()
                .push((callback, transfer)),
            None => unknown.push((callback, transfer)),
        }
    }
    record(context, orphans.into_iter().map(Outcome::Settle).collect())?;
    let mut outcomes = Vec::new();
    for (callback, transfer) in unknown {
        let why = format!(
            "no known librarian is called '{}' or '{}'; add the source librarian as a peer",
            transfer.source, transfer.uploader
        );
        outcomes.push(later(context, callback, &transfer, why, false));
    }
    record(context, outcomes)?;
    for (peer_name, items) in by_peer {
        if !context.keep_going() {
            break;
        }
        deliver_to(context, &peer_name, items)?;
    }
    Ok(())
}

/// What to record of one callback.
enum Outcome {
    /// Delivered, refused, or nobody to call: forget it.
    Settle(u64),
    /// Still owed: this attempt failed.
    Attempted(OwedCallback),
}

/// Counts a callback that stays owed, and says why the first time (unless
/// `quietly`: the caller says it once for many).
fn later(
    context: &TaskContext,
    mut callback: OwedCallback,
    transfer: &IncomingTransfer,
    why: String,
    quietly: bool,
) -> Outcome {
    if callback.attempts == 0 && !quietly {
        context.item_failed(format!(
            "the callback for clone {} of '{}' waits: {why}",
            transfer.id, transfer.destination_location
        ));
    }
    callback.attempts += 1;
    callback.last_attempt = Some(Timestamp::now());
    callback.last_error = Some(why);
    Outcome::Attempted(callback)
}

/// Delivers the callbacks owed to one peer, `PARALLEL_CALLBACKS` at a time; stops
/// at the first sign that the peer cannot be reached.
fn deliver_to(
    context: &TaskContext,
    peer_name: &str,
    items: Vec<(OwedCallback, IncomingTransfer)>,
) -> anyhow::Result<()> {
    let node = context.node();
    let peer = known_peer(node, &[peer_name])?;
    let client = match peer.as_ref().map(|p| client_for_peer(node, p)) {
        Some(Ok(client)) => client,
        Some(Err(error)) => {
            let why = error.to_string();
            let outcomes = items
                .into_iter()
                .map(|(c, t)| later(context, c, &t, why.clone(), false))
                .collect();
            return Ok(record(context, outcomes)?);
        }
        None => return Ok(()),
    };
    let total = items.len();
    let mut done = 0;
    // Whether the peer takes many completions at once (a quire peer does).
    let mut batches_accepted = true;
    for chunk in items.chunks(CHUNK) {
        if !context.keep_going() {
            break;
        }
        let deliveries = context.block_on(deliver_chunk(
            &client,
            chunk,
            peer_name,
            &mut batches_accepted,
        ));
        done += chunk.len();
        let mut unreachable = None;
        let mut outcomes = Vec::with_capacity(chunk.len());
        for ((callback, transfer), delivery) in chunk.iter().zip(deliveries) {
            match delivery {
                Delivery::Delivered => {
                    context.item_done();
                    outcomes.push(Outcome::Settle(callback.transfer_id));
                }
                Delivery::Refused(why) | Delivery::Nobody(why) => {
                    context.item_failed(why);
                    outcomes.push(Outcome::Settle(callback.transfer_id));
                }
                Delivery::Later { peer, why } => {
                    let quietly = peer.is_some();
                    if quietly {
                        unreachable = Some(why.clone());
                    }
                    outcomes.push(later(context, callback.clone(), transfer, why, quietly));
                }
            }
        }
        record(context, outcomes)?;
        if let Some(why) = unreachable {
            context.item_failed(format!(
                "{} callbacks to {peer_name} wait for the next run: {why}",
                total - done + chunk.len()
            ));
            break;
        }
    }
    Ok(())
}

/// Delivers a chunk: its completions in one `clone/batch_complete` when the peer
/// takes it, everything else (and everything, for a peer that does not) one
/// callback at a time, `PARALLEL_CALLBACKS` at once. One delivery per item.
async fn deliver_chunk(
    client: &LibrarianClient,
    chunk: &[(OwedCallback, IncomingTransfer)],
    peer: &str,
    batches_accepted: &mut bool,
) -> Vec<Delivery> {
    let mut deliveries: Vec<Option<Delivery>> = (0..chunk.len()).map(|_| None).collect();
    let completions: Vec<(usize, CloneCompleteRequest)> = chunk
        .iter()
        .enumerate()
        .filter(|(_, (callback, _))| callback.kind == CallbackKind::Complete)
        .filter_map(|(index, (_, transfer))| {
            Some((
                index,
                CloneCompleteRequest {
                    source_transfer_id: transfer.source_transfer_id? as i64,
                    destination_transfer_id: transfer.id as i64,
                    store_id: transfer.store_id as i64,
                },
            ))
        })
        .collect();
    if *batches_accepted && completions.len() > 1 {
        let request = CloneBatchCompleteRequest {
            completions: completions.iter().map(|(_, c)| c.clone()).collect(),
        };
        match client.clone_batch_complete(&request).await {
            Ok(answer) if answer.results.len() == completions.len() => {
                for ((index, asked), result) in completions.iter().zip(answer.results) {
                    deliveries[*index] = Some(match result.error {
                        None => Delivery::Delivered,
                        Some(reason) => Delivery::Refused(format!(
                            "{peer} refused the callback for its transfer {}: {reason}",
                            asked.source_transfer_id
                        )),
                    });
                }
            }
            Err(error) if error.is_transient() => {
                let why = error.to_string();
                let unreachable = matches!(error, PeerError::Unreachable { .. });
                for (index, _) in &completions {
                    deliveries[*index] = Some(Delivery::Later {
                        peer: unreachable.then(|| peer.to_string()),
                        why: why.clone(),
                    });
                }
            }
            // A peer without the route (a Librarian): one at a time from now on.
            _ => *batches_accepted = false,
        }
    }
    let singles: Vec<Delivery> = stream::iter(
        chunk
            .iter()
            .zip(&deliveries)
            .filter(|(_, done)| done.is_none())
            .map(|(item, _)| item),
    )
    .map(|(callback, transfer)| send(client, callback, transfer, peer))
    .buffered(PARALLEL_CALLBACKS)
    .collect()
    .await;
    let mut singles = singles.into_iter();
    deliveries
        .into_iter()
        .map(|d| d.or_else(|| singles.next()).expect("one delivery per item"))
        .collect()
}

/// Records the outcomes of a chunk in one transaction.
fn record(context: &TaskContext, outcomes: Vec<Outcome>) -> Result<(), DbError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    context.node().db.write_blocking(move |txn| {
        for outcome in &outcomes {
            match outcome {
                Outcome::Settle(id) => callbacks::settle(txn, *id)?,
                Outcome::Attempted(callback) => callbacks::put_owed(txn, callback)?,
            }
        }
        Ok(Ok::<_, DbError>(()))
    })
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
