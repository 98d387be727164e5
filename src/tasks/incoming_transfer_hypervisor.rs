//! `incoming_transfer_hypervisor`: settles clones arriving here that have been
//! INITIATED or ONGOING for longer than `age_in_days`, by asking their source for
//! the state of its outgoing transfer (`checkin/status`).
//!
//! - the source no longer knows the transfer, or ended it (COMPLETED, FAILED or
//!   CANCELLED while ours is still live): ours is FAILED and its staging removed;
//! - the source is further on (it says ONGOING or STAGED while ours is behind):
//!   ours catches up, so that `recieve_clone` stores a STAGED one;
//! - the source is behind ours (INITIATED while ours is ONGOING): ours is FAILED,
//!   since a clone is pushed and cannot be ahead of its sender;
//! - the same state on both sides: left to the source, whose move it is;
//! - the source does not answer: left for the next run.
//!
//! Only clones are looked at (transfers with a source transfer id); uploads expire
//! by `staging_expiry`. A clone whose source is not a known peer is failed: nobody
//! can ever move it on. Invariant: a transfer is changed only if it still has the
//! status it was judged by (read again in the writing transaction).

use std::collections::BTreeMap;

use super::TaskContext;
use crate::config::tasks::IncomingTransferHypervisor;
use crate::db::DbError;
use crate::db::repo::transfers;
use crate::ingest::transfer_state::{discard_staging_of, fail_in};
use crate::model::{IncomingTransfer, Librarian, Timestamp, TransferStatus};
use crate::peer::registry::{client_for_peer, known_peer};
use crate::protocol::checkin::CheckinStatusRequest;

/// What to do with one stale transfer.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Fail(String),
    CatchUp(TransferStatus),
    Leave,
}

/// Runs one pass over the stale incoming clones.
pub fn run(context: &TaskContext, settings: &IncomingTransferHypervisor) -> anyhow::Result<()> {
    let node = context.node();
    // A negative age makes every live transfer stale, as zero does.
    let cut_off = Timestamp::days_ago(settings.age_in_days);
    let stale: Vec<IncomingTransfer> = node
        .db
        .read(transfers::live_incoming)?
        .into_iter()
        .filter(|t| {
            t.start_time < cut_off
                && t.source_transfer_id.is_some()
                && matches!(
                    t.status,
                    TransferStatus::Initiated | TransferStatus::Ongoing
                )
        })
        .collect();
    // Grouped by source: one ping and one `checkin/status` per librarian.
    let mut by_source: BTreeMap<String, (Librarian, Vec<IncomingTransfer>)> = BTreeMap::new();
    let mut steps = Vec::new();
    for transfer in stale {
        let names = [transfer.source.as_str(), transfer.uploader.as_str()];
        match known_peer(node, &names)? {
            Some(peer) => by_source
                .entry(peer.name.clone())
                .or_insert_with(|| (peer, Vec::new()))
                .1
                .push(transfer),
            None => {
                let why = format!("its source {} is not a known librarian", transfer.source);
                steps.push((transfer, Step::Fail(why)));
            }
        }
    }
    for (name, (peer, transfers)) in by_source {
        if !context.keep_going() {
            break;
        }
        match ask_source(context, &peer, &transfers) {
            Ok(theirs) => {
                steps.extend(transfers.into_iter().zip(theirs).map(|(transfer, theirs)| {
                    let step = step_for(transfer.status, theirs);
                    (transfer, step)
                }))
            }
            Err(why) => tracing::info!(source = %name, %why, transfers = transfers.len(),
                "stale incoming clones left for the next run: their source does not answer"),
        }
    }
    for (transfer, step) in steps {
        if !context.keep_going() {
            break;
        }
        apply(context, transfer, step)?;
    }
    Ok(())
}

/// What `peer` says of its side of each of `transfers` (in order); `Err` if it
/// cannot answer.
fn ask_source(
    context: &TaskContext,
    peer: &Librarian,
    transfers: &[IncomingTransfer],
) -> Result<Vec<Option<TransferStatus>>, String> {
    let client = client_for_peer(context.node(), peer).map_err(|e| e.to_string())?;
    context.block_on(client.ping()).map_err(|e| e.to_string())?;
    let ids: Vec<u64> = transfers
        .iter()
        .map(|t| t.source_transfer_id.unwrap_or_default())
        .collect();
    let request = CheckinStatusRequest {
        source_transfer_ids: ids.iter().map(|id| *id as i64).collect(),
        destination_transfer_ids: Vec::new(),
    };
    let answer = context
        .block_on(client.checkin_status(&request))
        .map_err(|e| e.to_string())?;
    Ok(ids
        .iter()
        .map(|id| {
            answer
                .source_transfer_status
                .get(&id.to_string())
                .copied()
                .flatten()
        })
        .collect())
}

/// The step for a transfer in `ours` whose source says `theirs`.
fn step_for(ours: TransferStatus, theirs: Option<TransferStatus>) -> Step {
    use TransferStatus::*;
    match theirs {
        None => Step::Fail("its source has no such outgoing transfer".into()),
        Some(Completed | Failed | Cancelled) => Step::Fail(format!(
            "its source ended the transfer ({})",
            theirs.map_or("", |s| s.name())
        )),
        Some(theirs) if theirs == ours => Step::Leave,
        Some(Initiated) => Step::Fail("its source is behind it (INITIATED)".into()),
        Some(Ongoing) if ours == Initiated => Step::CatchUp(Ongoing),
        Some(Staged) => Step::CatchUp(Staged),
        Some(_) => Step::Leave,
    }
}

fn apply(context: &TaskContext, transfer: IncomingTransfer, step: Step) -> anyhow::Result<()> {
    let node = context.node();
    let (id, judged) = (transfer.id, transfer.status);
    match step {
        Step::Leave => Ok(()),
        Step::CatchUp(status) => {
            let moved = node.db.write_blocking(move |txn| {
                let Some(mut transfer) = transfers::get_incoming(txn, id)? else {
                    return Ok(Ok::<_, DbError>(false));
                };
                if transfer.status != judged {
                    return Ok(Ok(false));
                }
                transfer.status = status;
                transfers::put_incoming(txn, &transfer)?;
                Ok(Ok(true))
            })?;
            if moved {
                tracing::info!(
                    transfer = id,
                    status = status.name(),
                    "stale incoming clone caught up with its source"
                );
                context.item_done();
            }
            Ok(())
        }
        Step::Fail(why) => {
            let failed = node.db.write_blocking(move |txn| {
                let current = transfers::get_incoming(txn, id)?;
                if current.is_none_or(|t| t.status != judged) {
                    return Ok(Ok::<_, DbError>(None));
                }
                Ok(Ok(fail_in(txn, id)?))
            })?;
            if let Some(failed) = failed {
                tracing::warn!(transfer = id, name = %failed.destination_location, %why,
                    "stale incoming clone failed");
                discard_staging_of(node, &[failed]);
                context.item_done();
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransferStatus::*;

    #[test]
    fn each_answer_of_the_source_leads_to_one_step() {
        assert!(matches!(step_for(Initiated, None), Step::Fail(_)));
        for ended in [Completed, Failed, Cancelled] {
            assert!(matches!(step_for(Ongoing, Some(ended)), Step::Fail(_)));
        }
        assert_eq!(step_for(Ongoing, Some(Ongoing)), Step::Leave);
        assert_eq!(step_for(Initiated, Some(Initiated)), Step::Leave);
        assert!(matches!(step_for(Ongoing, Some(Initiated)), Step::Fail(_)));
        assert_eq!(step_for(Initiated, Some(Ongoing)), Step::CatchUp(Ongoing));
        assert_eq!(step_for(Initiated, Some(Staged)), Step::CatchUp(Staged));
        assert_eq!(step_for(Ongoing, Some(Staged)), Step::CatchUp(Staged));
    }
}
