//! The network send path, as the three source-side tasks of a clone between
//! librarians: `send_clone` stages batches at the destination and queues them,
//! `consume_queue` moves their bytes (`crate::transfer`), `check_consumed_queue`
//! reports them STAGED. The queue is `SendQueueItem`s in the database.
//!
//! Invariants: an outgoing transfer enters the queue only after the destination
//! staged it (so it has a destination id); a failed transfer is failed on both
//! sides (the destination is told, best effort) with its reason recorded in the
//! queue and as an error; nothing is sent to, or reported to, a peer whose
//! transfers are disabled.

pub mod check_consumed_queue;
pub mod consume_queue;
mod disabled;
pub mod resend;
pub mod send_clone;

use crate::db::DbError;
use crate::db::repo::{errors, librarians, send_queue, transfers};
use crate::model::{
    ErrorCategory, ErrorSeverity, Librarian, SendQueueItem, SendState, Timestamp, TransferStatus,
};
use crate::node::Node;
use crate::peer::LibrarianClient;
use crate::peer::registry::client_for_peer;
use crate::protocol::checkin::CheckinUpdateRequest;

use super::TaskContext;

/// The peer called `name`, if known and its transfers are enabled; otherwise
/// `None`, after saying why in the run's report when it is unknown.
fn enabled_peer(context: &TaskContext, name: &str) -> Result<Option<Librarian>, DbError> {
    let peer = context
        .node()
        .db
        .read(|tx| librarians::get_librarian(tx, name))?;
    match peer {
        None => {
            context.item_failed(format!(
                "{name} is not a known peer librarian; add it with `quire librarians add`"
            ));
            Ok(None)
        }
        Some(peer) if !peer.transfers_enabled => Ok(None),
        Some(peer) => Ok(Some(peer)),
    }
}

/// Fails the live outgoing transfers `outgoing_ids` with `reason` (one error
/// record for all of them) and tells the destination to fail its side.
fn fail_transfers(
    context: &TaskContext,
    client: Option<&LibrarianClient>,
    destination: &str,
    outgoing_ids: Vec<u64>,
    destination_ids: Vec<u64>,
    reason: &str,
) -> Result<(), DbError> {
    if outgoing_ids.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{} outgoing transfer(s) to {destination} failed: {reason}",
        outgoing_ids.len()
    );
    let task = context.task_name().to_string();
    let count = outgoing_ids.len();
    context.node().db.write_blocking(move |txn| {
        let now = Timestamp::now();
        for id in outgoing_ids {
            if let Some(mut transfer) = transfers::get_outgoing(txn, id)?
                && !transfer.status.is_terminal()
            {
                transfer.status = TransferStatus::Failed;
                transfer.end_time = Some(now);
                transfers::put_outgoing(txn, &transfer)?;
            }
        }
        errors::raise(
            txn,
            ErrorSeverity::Warning,
            ErrorCategory::Transfer,
            message,
            Some(task),
        )?;
        Ok(Ok::<_, DbError>(()))
    })?;
    tracing::warn!(%destination, transfers = count, %reason, "outgoing transfers failed");
    if let Some(client) = client
        && !destination_ids.is_empty()
    {
        let request = CheckinUpdateRequest {
            source_transfer_ids: Vec::new(),
            destination_transfer_ids: destination_ids.iter().map(|id| *id as i64).collect(),
            new_status: TransferStatus::Failed,
        };
        if let Err(error) = context.block_on(client.checkin_update(&request)) {
            tracing::info!(%destination, %error,
                "cannot tell the destination that its transfers failed; its hypervisor will ask");
        }
    }
    Ok(())
}

/// The client for a live batch's destination, when the batch may go on now:
/// `None` when the peer's transfers are disabled, when this node cannot build a
/// client for it (said in the run's report), or when the peer was removed (then
/// the batch is given up).
fn client_for_batch(
    context: &TaskContext,
    item: &SendQueueItem,
) -> Result<Option<LibrarianClient>, DbError> {
    if drop_if_peer_removed(context, item)? {
        return Ok(None);
    }
    let Some(peer) = enabled_peer(context, &item.destination)? else {
        return Ok(None);
    };
    match client_for_peer(context.node(), &peer) {
        Ok(client) => Ok(Some(client)),
        Err(error) => {
            context.item_failed(format!("cannot reach {}: {error}", item.destination));
            Ok(None)
        }
    }
}

/// Gives up a live batch whose destination is no longer a known peer (it was
/// removed): its transfers fail here; nobody is told. Returns whether it did.
fn drop_if_peer_removed(context: &TaskContext, item: &SendQueueItem) -> Result<bool, DbError> {
    let node = context.node();
    if node
        .db
        .read(|tx| librarians::get_librarian(tx, &item.destination))?
        .is_some()
    {
        return Ok(false);
    }
    let mut item = item.clone();
    let outgoing = pending(&item).map(|i| i.outgoing_id).collect();
    let reason = format!("{} is no longer a known peer", item.destination);
    give_up(&mut item, reason.clone());
    save(node, &item)?;
    fail_transfers(
        context,
        None,
        &item.destination,
        outgoing,
        Vec::new(),
        &reason,
    )?;
    Ok(true)
}

/// Stores a batch as it now is.
fn save(node: &Node, item: &SendQueueItem) -> Result<(), DbError> {
    let item = item.clone();
    node.db.write_blocking(move |txn| {
        send_queue::put_item(txn, &item)?;
        Ok(Ok::<_, DbError>(()))
    })
}

/// The wait before the next attempt after `retries` failed ones: `base`, then
/// twice that, four times... at most an hour.
fn backoff_micros(base: std::time::Duration, retries: u32) -> i64 {
    let doubled = base.saturating_mul(1 << retries.saturating_sub(1).min(16));
    doubled
        .min(std::time::Duration::from_secs(3_600))
        .as_micros() as i64
}

/// A live batch's transfers that are still worth moving: not failed on their own.
fn pending(item: &SendQueueItem) -> impl Iterator<Item = &crate::model::SendItem> {
    item.items.iter().filter(|i| i.failure.is_none())
}

/// Marks `item` failed for good with `reason`.
fn give_up(item: &mut SendQueueItem, reason: String) {
    item.state = SendState::Failed;
    item.last_failure = Some(reason);
    item.end_time = Some(Timestamp::now());
}
