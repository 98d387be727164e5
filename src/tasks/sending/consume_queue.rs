//! `consume_queue`: moves the bytes of queued batches, highest priority first,
//! then oldest, while fewer than `max_async_inflight_transfers` batches are moved
//! but not yet reported STAGED. A batch whose destination cannot be reached is
//! tried again after a back-off, up to `max_async_send_retries` times, then its
//! transfers fail on both sides; a file the destination refuses, or whose source
//! copy no longer matches its record, fails alone and the rest go on.

use std::time::Duration;

use super::{backoff_micros, client_for_batch, fail_transfers, give_up, pending, save};
use crate::config::tasks::ConsumeQueue;
use crate::db::DbError;
use crate::db::repo::{files, send_queue, transfers};
use crate::integrity;
use crate::model::{SendProvider, SendQueueItem, SendState, Timestamp};
use crate::node::Node;
use crate::peer::LibrarianClient;
use crate::tasks::TaskContext;
use crate::transfer::{self, FileOutcome, Outbound, SourceCopy};

/// Runs one pass over the queue.
pub fn run(context: &TaskContext, _settings: &ConsumeQueue) -> anyhow::Result<()> {
    let node = context.node();
    let live = node.db.read(send_queue::live_items)?;
    // Batches moved to a peer that cannot hear of them now (disabled, removed)
    // hold no slot: they would stop every other peer's.
    let enabled: std::collections::HashSet<String> = node
        .db
        .read(crate::db::repo::librarians::all_librarians)?
        .into_iter()
        .filter(|p| p.transfers_enabled)
        .map(|p| p.name)
        .collect();
    let mut in_flight = live
        .iter()
        .filter(|i| i.state == SendState::Moved && enabled.contains(&i.destination))
        .count();
    let now = Timestamp::now();
    let mut ready: Vec<SendQueueItem> = live
        .into_iter()
        .filter(|i| i.state == SendState::Queued && i.not_before <= now)
        .collect();
    ready.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)));
    for item in ready {
        if !context.keep_going() {
            break;
        }
        if in_flight >= node.config.max_async_inflight_transfers {
            tracing::info!(
                in_flight,
                "as many batches in flight as allowed; the rest wait"
            );
            break;
        }
        let Some(client) = client_for_batch(context, &item)? else {
            continue;
        };
        if consume(context, &client, item)? {
            in_flight += 1;
        }
    }
    Ok(())
}

/// Moves one batch; returns whether it is now in flight (moved).
fn consume(
    context: &TaskContext,
    client: &LibrarianClient,
    mut item: SendQueueItem,
) -> anyhow::Result<bool> {
    let node = context.node();
    let outbound = open_sources(context, client, &mut item)?;
    let attempt = match item.provider {
        SendProvider::Local => Ok(transfer::local::send(
            outbound,
            &transfer::local::Bounds::of(node),
        )),
        SendProvider::QuireHttp => {
            let pace = transfer::pace::for_peer(node, &item.destination);
            context.block_on(transfer::quire_http::send(client, pace, outbound))
        }
    };
    match attempt {
        Ok(outcomes) => {
            let mut sent = 0;
            for (index, outcome) in outcomes {
                match outcome {
                    FileOutcome::Moved { sent: bytes } => sent += bytes,
                    FileOutcome::Refused(reason) => {
                        fail_one(context, client, &mut item, index, reason)?;
                    }
                    FileOutcome::SourceDiffers => {
                        recheck_source(node, &item.items[index].file_name);
                        let reason = format!(
                            "the copy of {} here no longer matches its record; it was not sent \
                             (see quire validate)",
                            item.items[index].file_name
                        );
                        fail_one(context, client, &mut item, index, reason)?;
                    }
                }
            }
            let now = Timestamp::now();
            item.bytes_moved = item.total_bytes();
            item.moved_time = Some(now);
            if pending(&item).next().is_some() {
                item.state = SendState::Moved;
                tracing::info!(destination = %item.destination, batch = item.id,
                    files = pending(&item).count(), sent, "clone batch moved");
            } else {
                give_up(&mut item, "every file of the batch failed".into());
            }
            save(node, &item)?;
            context.item_done();
            Ok(item.state == SendState::Moved)
        }
        Err(unreachable) => {
            item.retries += 1;
            let reason = format!("attempt {}: {unreachable}", item.retries);
            context.item_failed(format!(
                "batch {} to {}: {reason}",
                item.id, item.destination
            ));
            if item.retries > node.config.max_async_send_retries {
                let outgoing = pending(&item).map(|i| i.outgoing_id).collect();
                let remote = pending(&item).map(|i| i.destination_transfer_id).collect();
                let why = format!(
                    "gave up after {} attempts; the last: {unreachable}",
                    item.retries
                );
                give_up(&mut item, why.clone());
                save(node, &item)?;
                fail_transfers(
                    context,
                    Some(client),
                    &item.destination,
                    outgoing,
                    remote,
                    &why,
                )?;
            } else {
                item.last_failure = Some(reason);
                item.not_before = Timestamp::now()
                    .plus_micros(backoff_micros(node.config.send_retry_backoff, item.retries));
                save(node, &item)?;
            }
            Ok(false)
        }
    }
}

/// Opens the source of every pending file of the batch. A file whose transfer
/// is no longer live here, or whose source cannot be opened, fails alone.
fn open_sources(
    context: &TaskContext,
    client: &LibrarianClient,
    item: &mut SendQueueItem,
) -> anyhow::Result<Vec<Outbound>> {
    let node = context.node();
    let corrupt = transfer::corrupt_copies(node).map_err(anyhow::Error::msg)?;
    let mut outbound = Vec::new();
    for index in 0..item.items.len() {
        let send = &item.items[index];
        if send.failure.is_some() {
            continue;
        }
        let id = send.outgoing_id;
        let status = node
            .db
            .read(|tx| transfers::get_outgoing(tx, id))?
            .map(|t| t.status);
        if let Some(status) = status.filter(|s| s.is_terminal()) {
            item.items[index].failure = Some(format!("the transfer is {} here", status.name()));
            continue;
        }
        match transfer::open_source(node, &send.file_name, &corrupt) {
            Ok(SourceCopy {
                file,
                size,
                instance,
            }) if size == send.size => outbound.push(Outbound {
                index,
                file_name: send.file_name.clone(),
                source: file,
                size,
                blake3: instance.blake3,
                destination_transfer_id: send.destination_transfer_id,
                staging_location: send.staging_location.clone(),
            }),
            Ok(SourceCopy { size, .. }) => {
                let name = send.file_name.clone();
                recheck_source(node, &name);
                let reason = format!(
                    "the copy of {name} here is {size} bytes, its record says {}; it was not sent",
                    send.size
                );
                fail_one(context, client, item, index, reason)?;
            }
            Err(reason) => fail_one(context, client, item, index, reason)?,
        }
    }
    Ok(outbound)
}

/// Fails one file of a batch on both sides.
fn fail_one(
    context: &TaskContext,
    client: &LibrarianClient,
    item: &mut SendQueueItem,
    index: usize,
    reason: String,
) -> Result<(), DbError> {
    let send = &mut item.items[index];
    send.failure = Some(reason.clone());
    let (outgoing, remote) = (send.outgoing_id, send.destination_transfer_id);
    let destination = item.destination.clone();
    item.last_failure = Some(reason.clone());
    context.item_failed(format!("{}: {reason}", send.file_name));
    fail_transfers(
        context,
        Some(client),
        &destination,
        vec![outgoing],
        vec![remote],
        &reason,
    )
}

/// Hashes every copy of `file_name` here afresh and records what was found, so
/// a copy that rotted becomes a corrupt-file record and an error.
fn recheck_source(node: &Node, file_name: &str) {
    let found = node.db.read(|tx| {
        let file = files::get_file(tx, file_name)?;
        let copies = crate::db::repo::instances::of_file(tx, file_name)?;
        Ok((file, copies))
    });
    let Ok((Some(file), copies)) = found else {
        return;
    };
    for instance in copies {
        let outcome =
            integrity::verify_instance_blake3(&node.stores, &file, &instance, Duration::ZERO);
        if let Err(error) = integrity::record_outcome(&node.db, &file, &outcome, "consume_queue") {
            tracing::warn!(file = %file_name, %error, "cannot record the source's check");
        }
    }
}
