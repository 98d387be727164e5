//! `check_consumed_queue`: reports moved batches to their destination
//! (`checkin/update` to STAGED) and marks their transfers STAGED here, so that
//! the destination's `recieve_clone` stores the files and calls back
//! `clone/complete`. A destination that cannot be reached is asked again on the
//! next run; a transfer the destination will not stage (it failed there) fails
//! here too, with the destination's reason.

use std::collections::HashSet;

use super::{client_for_batch, fail_transfers, pending, save};
use crate::config::tasks::CheckConsumedQueue;
use crate::db::DbError;
use crate::db::repo::{send_queue, transfers};
use crate::model::{SendQueueItem, SendState, Timestamp, TransferStatus};
use crate::peer::LibrarianClient;
use crate::protocol::checkin::{CheckinStatusRequest, CheckinUpdateRequest};
use crate::tasks::TaskContext;

/// Runs one pass over the moved batches.
pub fn run(context: &TaskContext, _settings: &CheckConsumedQueue) -> anyhow::Result<()> {
    let node = context.node();
    let moved: Vec<SendQueueItem> = node
        .db
        .read(send_queue::live_items)?
        .into_iter()
        .filter(|i| i.state == SendState::Moved)
        .collect();
    for item in moved {
        if !context.keep_going() {
            break;
        }
        let Some(client) = client_for_batch(context, &item)? else {
            continue;
        };
        report_staged(context, &client, item)?;
    }
    Ok(())
}

fn report_staged(
    context: &TaskContext,
    client: &LibrarianClient,
    mut item: SendQueueItem,
) -> anyhow::Result<()> {
    let remote: Vec<i64> = pending(&item)
        .map(|i| i.destination_transfer_id as i64)
        .collect();
    let request = CheckinUpdateRequest {
        source_transfer_ids: Vec::new(),
        destination_transfer_ids: remote.clone(),
        new_status: TransferStatus::Staged,
    };
    let answer = match context.block_on(client.checkin_update(&request)) {
        Ok(answer) => answer,
        Err(error) => {
            tracing::info!(destination = %item.destination, batch = item.id, %error,
                "cannot report the batch staged; asked again on the next run");
            item.last_failure = Some(format!("reporting it staged: {error}"));
            save(context.node(), &item)?;
            return Ok(());
        }
    };
    let mut staged: HashSet<i64> = answer
        .modified_destination_transfer_ids
        .iter()
        .copied()
        .collect();
    // Those the destination did not change may be staged there already (a report
    // whose answer was lost): ask.
    let unchanged = answer.unmodified_destination_transfer_ids.clone();
    if !unchanged.is_empty() {
        let status = CheckinStatusRequest {
            source_transfer_ids: Vec::new(),
            destination_transfer_ids: unchanged.clone(),
        };
        if let Ok(there) = context.block_on(client.checkin_status(&status)) {
            for id in &unchanged {
                let state = there
                    .destination_transfer_status
                    .get(&id.to_string())
                    .copied()
                    .flatten();
                if matches!(
                    state,
                    Some(TransferStatus::Staged) | Some(TransferStatus::Completed)
                ) {
                    staged.insert(*id);
                }
            }
        } else {
            tracing::info!(destination = %item.destination, batch = item.id,
                "cannot ask the destination about transfers it did not stage; asked again later");
            return Ok(());
        }
    }
    let reasons = answer.reasons.join("; ");
    let mut refused = (Vec::new(), Vec::new());
    let mut now_staged = Vec::new();
    for send in item.items.iter_mut().filter(|i| i.failure.is_none()) {
        if staged.contains(&(send.destination_transfer_id as i64)) {
            now_staged.push(send.outgoing_id);
        } else {
            send.failure = Some(format!("the destination did not stage it: {reasons}"));
            refused.0.push(send.outgoing_id);
            refused.1.push(send.destination_transfer_id);
        }
    }
    let ids = now_staged.clone();
    context.node().db.write_blocking(move |txn| {
        for id in ids {
            if let Some(mut transfer) = transfers::get_outgoing(txn, id)?
                && matches!(
                    transfer.status,
                    TransferStatus::Initiated | TransferStatus::Ongoing
                )
            {
                transfer.status = TransferStatus::Staged;
                transfers::put_outgoing(txn, &transfer)?;
            }
        }
        Ok(Ok::<_, DbError>(()))
    })?;
    if !refused.0.is_empty() {
        let reason = format!("the destination did not stage them: {reasons}");
        fail_transfers(
            context,
            None,
            &item.destination,
            refused.0,
            refused.1,
            &reason,
        )?;
        item.last_failure = Some(reason);
    }
    item.state = SendState::Done;
    item.end_time = Some(Timestamp::now());
    save(context.node(), &item)?;
    tracing::info!(destination = %item.destination, batch = item.id,
        files = now_staged.len(), "clone batch reported staged");
    context.item_done();
    Ok(())
}
