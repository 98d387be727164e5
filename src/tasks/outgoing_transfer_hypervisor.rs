//! `outgoing_transfer_hypervisor`: settles outgoing transfers that have been live
//! for longer than `age_in_days` by asking their destination for the file. The
//! common case is a `clone/complete` callback that was lost: the destination
//! stored the file but this node never heard of it.
//!
//! For each stale transfer (INITIATED, ONGOING or STAGED, started before the
//! cut-off), its destination is asked by `search/file`:
//! - exactly one record of that name with the transfer's checksum: the transfer
//!   is COMPLETED and a RemoteInstance recorded, in one transaction, as if the
//!   callback had arrived;
//! - no record, or another checksum: the transfer is FAILED (the file will never
//!   arrive as sent), so that a later `send_clone` may try again; unless the
//!   destination says its side of the transfer is still live (bytes staged and
//!   waiting to be stored), which leaves it for a later run;
//! - a destination that does not answer (or is not a known peer any more, whose
//!   transfers were cancelled when it was removed): the transfer is left as it is
//!   and tried again on the next run. Nothing is failed for want of an answer.
//!
//! Invariant: a transfer is changed only if it is still live when the answer is
//! recorded (read again in the writing transaction).

use std::collections::{BTreeMap, HashSet};

use super::TaskContext;
use crate::config::tasks::OutgoingTransferHypervisor;
use crate::db::DbError;
use crate::db::repo::{instances, next_id, transfers};
use crate::model::{Checksum, OutgoingTransfer, RemoteInstance, Timestamp, TransferStatus};
use crate::peer::registry::client_for;
use crate::protocol::checkin::CheckinStatusRequest;

/// What the destination says of one transfer's file.
pub(super) enum Verdict {
    /// It holds the file, with the same checksum, in its store `store_id`.
    Holds { store_id: u64 },
    /// It does not hold the file as sent; why.
    Lacks(String),
}

/// Runs one pass over the stale outgoing transfers.
pub fn run(context: &TaskContext, settings: &OutgoingTransferHypervisor) -> anyhow::Result<()> {
    let node = context.node();
    // A negative age makes every live transfer stale, as zero does.
    let cut_off = Timestamp::days_ago(settings.age_in_days);
    let stale: Vec<OutgoingTransfer> = node
        .db
        .read(transfers::live_outgoing)?
        .into_iter()
        .filter(|t| t.start_time < cut_off)
        .collect();
    let mut by_destination: BTreeMap<String, Vec<OutgoingTransfer>> = BTreeMap::new();
    for transfer in stale {
        by_destination
            .entry(transfer.destination.clone())
            .or_default()
            .push(transfer);
    }
    for (destination, stale) in by_destination {
        if !context.keep_going() {
            break;
        }
        let client = match client_for(node, &destination) {
            Ok(client) => client,
            Err(error) => {
                context.item_failed(format!(
                    "{} stale transfers to {destination} left as they are: {error}",
                    stale.len()
                ));
                continue;
            }
        };
        if let Err(error) = context.block_on(client.ping()) {
            tracing::info!(%destination, %error, transfers = stale.len(),
                "destination unreachable; its stale transfers are tried again on the next run");
            continue;
        }
        let working = still_working_there(context, &client, &stale);
        for transfer in stale {
            if !context.keep_going() {
                break;
            }
            if transfer
                .remote_transfer_id
                .is_some_and(|remote| working.contains(&remote))
            {
                continue;
            }
            let verdict = match context.block_on(client.find_file(&transfer.file_name)) {
                Ok(found) => verdict(&transfer, found),
                Err(error) => {
                    context.item_failed(format!(
                        "cannot ask {destination} for {} (outgoing transfer {}): {error}",
                        transfer.file_name, transfer.id
                    ));
                    continue;
                }
            };
            settle(context, transfer, verdict)?;
        }
    }
    Ok(())
}

/// The destination's transfer ids, among those of `stale`, whose side it says is
/// still live (its bytes may be staged and waiting for `recieve_clone`): for
/// those the file's absence means nothing yet. Asked once per destination;
/// transfers whose destination id was never reported (SneakerNet) are not
/// asked about, and a destination that does not say leaves the set empty.
fn still_working_there(
    context: &TaskContext,
    client: &crate::peer::LibrarianClient,
    stale: &[OutgoingTransfer],
) -> HashSet<u64> {
    let remote: Vec<u64> = stale.iter().filter_map(|t| t.remote_transfer_id).collect();
    if remote.is_empty() {
        return HashSet::new();
    }
    let request = CheckinStatusRequest {
        source_transfer_ids: Vec::new(),
        destination_transfer_ids: remote.iter().map(|id| *id as i64).collect(),
    };
    let Ok(answer) = context.block_on(client.checkin_status(&request)) else {
        return HashSet::new();
    };
    remote
        .into_iter()
        .filter(|id| {
            answer
                .destination_transfer_status
                .get(&id.to_string())
                .copied()
                .flatten()
                .is_some_and(|status| !status.is_terminal())
        })
        .collect()
}

/// What the destination's record (if any) means for `transfer`.
pub(super) fn verdict(
    transfer: &OutgoingTransfer,
    found: Option<crate::protocol::search::FileSearchResponse>,
) -> Verdict {
    let Some(record) = found else {
        return Verdict::Lacks("the destination has no file of that name".into());
    };
    match Checksum::parse(&record.checksum) {
        Ok(checksum) if checksum == transfer.transfer_checksum => Verdict::Holds {
            store_id: record
                .instances
                .iter()
                .find_map(|i| i.store_id)
                .unwrap_or_default(),
        },
        _ => Verdict::Lacks(format!(
            "the destination holds it with checksum {} instead of {}",
            record.checksum, transfer.transfer_checksum
        )),
    }
}

/// Records the verdict for `transfer`, if it is still live.
pub(super) fn settle(
    context: &TaskContext,
    transfer: OutgoingTransfer,
    verdict: Verdict,
) -> anyhow::Result<()> {
    let node = context.node();
    let sender = node.config.name.clone();
    let id = transfer.id;
    let reason = match &verdict {
        Verdict::Holds { .. } => None,
        Verdict::Lacks(why) => Some(why.clone()),
    };
    let changed = node.db.write_blocking(move |txn| {
        let Some(mut transfer) = transfers::get_outgoing(txn, id)? else {
            return Ok(Ok::<_, DbError>(false));
        };
        if transfer.status.is_terminal() {
            return Ok(Ok(false));
        }
        let now = Timestamp::now();
        transfer.end_time = Some(now);
        match verdict {
            Verdict::Holds { store_id } => {
                transfer.status = TransferStatus::Completed;
                let remote = RemoteInstance {
                    id: next_id(txn, "remote_instances")?,
                    file_name: transfer.file_name.clone(),
                    librarian_name: transfer.destination.clone(),
                    store_id,
                    copy_time: now,
                    sender,
                };
                instances::put_remote(txn, &remote)?;
            }
            Verdict::Lacks(_) => transfer.status = TransferStatus::Failed,
        }
        transfers::put_outgoing(txn, &transfer)?;
        Ok(Ok(true))
    })?;
    if changed {
        match reason {
            None => tracing::info!(transfer = id, file = %transfer.file_name,
                destination = %transfer.destination,
                "stale outgoing transfer completed: the destination holds the file"),
            Some(why) => tracing::warn!(transfer = id, file = %transfer.file_name,
                destination = %transfer.destination, %why, "stale outgoing transfer failed"),
        }
        context.item_done();
    }
    Ok(())
}
