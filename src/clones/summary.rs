//! What `quire transfers` shows: outgoing transfers per peer, counted by where
//! their bytes are, with the rate of the last minute and the last failure; and
//! one peer's recent transfers with the reason of each failure this node knows.

use std::collections::{BTreeMap, HashMap};

use crate::db::repo::{librarians, send_queue, transfers};
use crate::db::{DbError, Reads};
use crate::model::{OutgoingTransfer, SendQueueItem, SendState, Timestamp, TransferStatus};
use crate::protocol::transfers::{
    OutgoingTransferItem, PeerTransferSummary, SendConflict, Tally, TransferSummaryRequest,
    TransferSummaryResponse,
};

/// Transfers listed for one peer unless asked otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The window of the current rate.
const RATE_WINDOW_MICROS: i64 = 60_000_000;

/// Builds the summary in one read transaction.
pub fn summarize(
    tx: &impl Reads,
    request: &TransferSummaryRequest,
) -> Result<TransferSummaryResponse, DbError> {
    let all = transfers::all_outgoing(tx)?;
    let batches = send_queue::all_items(tx)?;
    let moved: HashMap<u64, SendState> = batches
        .iter()
        .flat_map(|b| b.items.iter().map(move |i| (i.outgoing_id, b.state)))
        .collect();
    let mut peers: BTreeMap<String, PeerTransferSummary> = BTreeMap::new();
    for peer in librarians::all_librarians(tx)? {
        let max_rate = librarians::max_rate(tx, &peer.name)?;
        let mut summary = empty(&peer.name);
        summary.known = true;
        summary.transfers_enabled = peer.transfers_enabled;
        summary.max_rate = max_rate;
        peers.insert(peer.name, summary);
    }
    for transfer in &all {
        let summary = peers
            .entry(transfer.destination.clone())
            .or_insert_with(|| empty(&transfer.destination));
        let tally = match transfer.status {
            TransferStatus::Initiated => &mut summary.queued,
            TransferStatus::Ongoing => match moved.get(&transfer.id) {
                Some(SendState::Moved) | Some(SendState::Done) => &mut summary.in_flight,
                _ => &mut summary.queued,
            },
            TransferStatus::Staged => &mut summary.staged,
            TransferStatus::Completed => &mut summary.completed,
            TransferStatus::Failed | TransferStatus::Cancelled => &mut summary.failed,
        };
        tally.add(transfer.transfer_size);
    }
    let since = Timestamp::now().plus_micros(-RATE_WINDOW_MICROS);
    for batch in &batches {
        let Some(summary) = peers.get_mut(&batch.destination) else {
            continue;
        };
        if batch.moved_time.is_some_and(|t| t >= since) {
            summary.rate_last_minute += batch.bytes_moved as f64 / 60.0;
        }
        if let Some(reason) = &batch.last_failure {
            let at = batch.end_time.or(batch.moved_time).unwrap_or(batch.created);
            if summary.last_failure_time.is_none_or(|t| t <= at) {
                summary.last_failure = Some(reason.clone());
                summary.last_failure_time = Some(at);
            }
        }
    }
    let mut response = TransferSummaryResponse {
        peers: peers.into_values().collect(),
        transfers: Vec::new(),
        conflicts: Vec::new(),
    };
    if let Some(name) = &request.librarian_name {
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
        response.transfers = recent(&all, &batches, name, limit);
        response.conflicts = send_queue::conflicts_with(tx, name)?
            .into_iter()
            .map(|(file_name, reason)| SendConflict { file_name, reason })
            .collect();
    }
    Ok(response)
}

fn empty(name: &str) -> PeerTransferSummary {
    PeerTransferSummary {
        librarian_name: name.to_string(),
        known: false,
        transfers_enabled: false,
        max_rate: None,
        queued: Tally::default(),
        in_flight: Tally::default(),
        staged: Tally::default(),
        completed: Tally::default(),
        failed: Tally::default(),
        rate_last_minute: 0.0,
        last_failure: None,
        last_failure_time: None,
    }
}

/// The newest `limit` transfers to `peer`, each with the reason its batch gave
/// if it failed.
fn recent(
    all: &[OutgoingTransfer],
    batches: &[SendQueueItem],
    peer: &str,
    limit: usize,
) -> Vec<OutgoingTransferItem> {
    let reasons: HashMap<u64, String> = batches
        .iter()
        .filter(|b| b.destination == peer)
        .flat_map(|b| {
            b.items.iter().filter_map(move |i| {
                i.failure
                    .clone()
                    .or_else(|| (b.state == SendState::Failed).then(|| b.last_failure.clone())?)
                    .map(|why| (i.outgoing_id, why))
            })
        })
        .collect();
    let providers: HashMap<u64, &'static str> = batches
        .iter()
        .filter(|b| b.destination == peer)
        .flat_map(|b| {
            b.items
                .iter()
                .map(move |i| (i.outgoing_id, b.provider.wire_name()))
        })
        .collect();
    all.iter()
        .rev()
        .filter(|t| t.destination == peer)
        .take(limit)
        .map(|t| OutgoingTransferItem {
            id: t.id,
            file_name: t.file_name.clone(),
            size: t.transfer_size,
            status: t.status,
            start_time: t.start_time,
            end_time: t.end_time,
            destination_transfer_id: t.remote_transfer_id,
            provider: providers.get(&t.id).map(|p| p.to_string()),
            failure: matches!(t.status, TransferStatus::Failed | TransferStatus::Cancelled)
                .then(|| reasons.get(&t.id).cloned())
                .flatten(),
        })
        .collect()
}
