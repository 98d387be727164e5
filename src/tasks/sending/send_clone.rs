//! `send_clone`: offers the destination the recent files it lacks, in batches of
//! `send_batch_size`, with `clone/batch_stage`; queues each staged batch for
//! `consume_queue` and tells the destination it is ONGOING.
//!
//! A file is offered when it was created within `age_in_days`, has an available
//! copy here, no remote instance on the destination, no live outgoing transfer
//! to it, and is not known to clash there (a file of that name with other bytes,
//! see `send_conflicts`). A batch the destination refuses fails its transfers
//! with the reason; files it already holds with the same bytes are recorded as
//! remote instances instead (a lost callback), and files it holds with other
//! bytes are recorded as conflicts, so the rest of the batch goes on the next run.

use std::collections::HashSet;
use std::path::Path;

use super::disabled::DisabledWatch;
use super::{enabled_peer, fail_transfers, pending};
use crate::config::tasks::SendClone;
use crate::db::DbError;
use crate::db::repo::{files, instances, librarians, next_id, next_ids, send_queue, transfers};
use crate::model::{
    File, Instance, OutgoingTransfer, SendItem, SendProvider, SendQueueItem, SendState, Timestamp,
    TransferStatus,
};
use crate::node::Node;
use crate::peer::registry::client_for_peer;
use crate::peer::{LibrarianClient, PeerError};
use crate::protocol::checkin::CheckinUpdateRequest;
use crate::protocol::clone::{
    CloneBatchInitiationRequest, CloneBatchInitiationResponse, CloneBatchItem,
};
use crate::protocol::upload::{LOCAL_PROVIDER, NETWORK_PROVIDER};
use crate::tasks::TaskContext;
use crate::tasks::outgoing_transfer_hypervisor::{Verdict, settle, verdict};
use crate::transfer::local::Bounds;

/// Batches offered per run at most (a bound on the memory of one run); the rest
/// wait for the next run.
const BATCHES_PER_RUN: usize = 256;

/// One file to offer, with the copy it is sent from.
type Candidate = (File, Instance);

/// Runs one pass for one destination.
pub fn run(context: &TaskContext, settings: &SendClone) -> anyhow::Result<()> {
    let node = context.node();
    let destination = settings.destination_librarian.as_str();
    let watch = DisabledWatch::of(context.task_name());
    let Some(peer) = enabled_peer(context, destination)? else {
        let known = node
            .db
            .read(|tx| librarians::get_librarian(tx, destination))?
            .is_some();
        if known {
            watch.disabled(context, destination, settings.warn_disabled_timer)?;
        }
        return Ok(());
    };
    watch.enabled();
    let client = match client_for_peer(node, &peer) {
        Ok(client) => client,
        Err(error) => {
            context.item_failed(format!("cannot send to {destination}: {error}"));
            return Ok(());
        }
    };
    let candidates = select(node, destination, settings)?;
    for batch in candidates.chunks(settings.send_batch_size) {
        if !context.keep_going() {
            break;
        }
        send_batch(context, &client, destination, batch)?;
    }
    Ok(())
}

/// The files to offer, oldest first, at most `BATCHES_PER_RUN` batches of them.
fn select(node: &Node, destination: &str, settings: &SendClone) -> Result<Vec<Candidate>, DbError> {
    let since = Timestamp::days_ago(settings.age_in_days);
    let limit = settings.send_batch_size.saturating_mul(BATCHES_PER_RUN);
    let preferred = settings
        .store_preference
        .as_deref()
        .and_then(|name| node.stores.by_name(name))
        .map(|store| store.id);
    node.db.read(|tx| {
        let mut skip: HashSet<String> = transfers::live_outgoing_to(tx, destination)?
            .into_iter()
            .map(|t| t.file_name)
            .collect();
        skip.extend(
            send_queue::conflicts_with(tx, destination)?
                .into_iter()
                .map(|(name, _)| name),
        );
        let mut found = Vec::new();
        files::visit_created_since(tx, since, &mut |file| {
            if skip.contains(&file.name)
                || instances::remotes_of_file(tx, &file.name)?
                    .iter()
                    .any(|r| r.librarian_name == destination)
            {
                return Ok(true);
            }
            let copies: Vec<Instance> = instances::of_file(tx, &file.name)?
                .into_iter()
                .filter(|i| i.available && node.stores.is_here(i.store_id))
                .collect();
            let chosen = copies
                .iter()
                .find(|i| Some(i.store_id) == preferred)
                .or(copies.first())
                .cloned();
            if let Some(instance) = chosen {
                found.push((file, instance));
            }
            Ok(found.len() < limit)
        })?;
        Ok(found)
    })
}

/// Creates the batch's transfers, stages them at the destination and queues them.
pub(super) fn send_batch(
    context: &TaskContext,
    client: &LibrarianClient,
    destination: &str,
    batch: &[Candidate],
) -> anyhow::Result<()> {
    let node = context.node();
    let created = create_transfers(node, destination, batch)?;
    if created.is_empty() {
        return Ok(());
    }
    // Some files of the batch may have got a live transfer meanwhile and were
    // left out: each transfer takes its own file's uploader.
    let uploaders: std::collections::HashMap<&str, &str> = batch
        .iter()
        .map(|(f, _)| (f.name.as_str(), f.uploader.as_str()))
        .collect();
    let request = CloneBatchInitiationRequest {
        uploads: created
            .iter()
            .map(|transfer| CloneBatchItem {
                upload_size: transfer.transfer_size as i64,
                upload_checksum: transfer.transfer_checksum.to_string(),
                upload_name: base_name(&transfer.file_name),
                destination_location: transfer.file_name.clone(),
                uploader: uploaders
                    .get(transfer.file_name.as_str())
                    .map_or_else(String::new, |u| u.to_string()),
                source_transfer_id: transfer.id as i64,
            })
            .collect(),
        source: node.config.name.clone(),
        total_size: created.iter().map(|t| t.transfer_size as i64).sum(),
    };
    let ids: Vec<u64> = created.iter().map(|t| t.id).collect();
    match context.block_on(client.clone_batch_stage(&request)) {
        Ok(response) => queue(context, client, destination, created, response),
        Err(PeerError::Refused { status, reason, .. }) if status.as_u16() == 409 => {
            already_there(context, client, destination, created, &reason)
        }
        Err(error @ PeerError::Refused { .. })
            if error.status().map(|s| s.as_u16()) == Some(425) =>
        {
            let reason = format!("the destination is receiving some of the files already: {error}");
            tell_failed_earlier(context, client, destination, &created)?;
            fail_transfers(context, None, destination, ids, Vec::new(), &reason)?;
            context.item_failed(reason);
            Ok(())
        }
        Err(error) => {
            let reason = format!("clone/batch_stage was refused: {error}");
            fail_transfers(context, None, destination, ids, Vec::new(), &reason)?;
            context.item_failed(reason);
            Ok(())
        }
    }
}

/// After a 425: the destination still works on transfers of these files that
/// failed here without it hearing so (it was down when they failed). It is told
/// now, so that the next run's batch is staged.
fn tell_failed_earlier(
    context: &TaskContext,
    client: &LibrarianClient,
    destination: &str,
    created: &[OutgoingTransfer],
) -> Result<(), DbError> {
    let names: HashSet<&str> = created.iter().map(|t| t.file_name.as_str()).collect();
    let earlier: Vec<i64> = context
        .node()
        .db
        .read(transfers::all_outgoing)?
        .into_iter()
        .filter(|t| {
            t.destination == destination
                && matches!(t.status, TransferStatus::Failed | TransferStatus::Cancelled)
                && names.contains(t.file_name.as_str())
        })
        .filter_map(|t| t.remote_transfer_id.map(|id| id as i64))
        .collect();
    if earlier.is_empty() {
        return Ok(());
    }
    let request = CheckinUpdateRequest {
        source_transfer_ids: Vec::new(),
        destination_transfer_ids: earlier,
        new_status: TransferStatus::Failed,
    };
    if let Err(error) = context.block_on(client.checkin_update(&request)) {
        tracing::info!(%destination, %error, "cannot tell the destination of transfers failed here");
    }
    Ok(())
}

/// The last component of a file name: the name of the staged file.
fn base_name(name: &str) -> String {
    Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
}

/// INITIATED transfers for the files of `batch` that still have no live transfer
/// to `destination` (read again in the writing transaction).
fn create_transfers(
    node: &Node,
    destination: &str,
    batch: &[Candidate],
) -> Result<Vec<OutgoingTransfer>, DbError> {
    let destination = destination.to_string();
    let batch = batch.to_vec();
    node.db.write_blocking(move |txn| {
        let live: HashSet<String> = transfers::live_outgoing_to(txn, &destination)?
            .into_iter()
            .map(|t| t.file_name)
            .collect();
        let fresh: Vec<&Candidate> = batch
            .iter()
            .filter(|(file, _)| !live.contains(&file.name))
            .collect();
        if fresh.is_empty() {
            return Ok(Ok::<_, DbError>(Vec::new()));
        }
        let first = next_ids(txn, "outgoing_transfers", fresh.len() as u64)?;
        let now = Timestamp::now();
        let created: Vec<OutgoingTransfer> = fresh
            .into_iter()
            .enumerate()
            .map(|(n, (file, instance))| {
                OutgoingTransfer::of_copy(
                    first + n as u64,
                    TransferStatus::Initiated,
                    &destination,
                    file,
                    instance,
                    now,
                )
            })
            .collect();
        transfers::put_outgoing_all(txn, &created)?;
        Ok(Ok(created))
    })
}

/// The provider this node sends with, among those the destination offers:
/// `local` when the destination lists a host name of this machine and its
/// staging directory is writable from here (a shared filesystem: the kernel
/// copies), else `quire_http` when offered (a quire destination). `Err` says what
/// was offered and why none fits.
fn choose_provider(
    here: &[String],
    bounds: &Bounds,
    response: &CloneBatchInitiationResponse,
) -> Result<SendProvider, String> {
    let offered = &response.async_transfer_providers;
    let permitted = response
        .uploads
        .iter()
        .try_for_each(|u| bounds.permit(Path::new(&u.staging_location)));
    let local = offered.get(LOCAL_PROVIDER);
    let listed_here = local.is_some_and(|l| l.hostnames.iter().any(|h| here.contains(h)));
    let here: Vec<&String> = here.iter().collect();
    let staging_writable = response
        .uploads
        .first()
        .and_then(|u| {
            Path::new(&u.staging_location)
                .parent()
                .map(Path::to_path_buf)
        })
        .is_some_and(|dir| {
            dir.is_dir() && rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok()
        });
    if listed_here && staging_writable && permitted.is_ok() {
        return Ok(SendProvider::Local);
    }
    if offered.contains_key(NETWORK_PROVIDER) {
        return Ok(SendProvider::QuireHttp);
    }
    if let Some(local) = local {
        if let (true, Err(reason)) = (listed_here, &permitted) {
            return Err(reason.clone());
        }
        return Err(if listed_here {
            format!(
                "the destination offers the local provider, but its staging directory {} is \
                 not writable from this host",
                response
                    .uploads
                    .first()
                    .map(|u| u.staging_location.as_str())
                    .unwrap_or_default()
            )
        } else {
            format!(
                "the destination offers only the local provider, for hosts {:?}, and this \
                 host is {here:?}: set local_hostnames if they share a filesystem",
                local.hostnames
            )
        });
    }
    let names: Vec<&String> = offered.keys().collect();
    Err(format!(
        "no transfer provider in common: the destination offers {names:?}, quire sends with \
         local (a shared filesystem) or quire_http (a quire destination)"
    ))
}

/// Queues a staged batch and tells the destination it is ONGOING.
fn queue(
    context: &TaskContext,
    client: &LibrarianClient,
    destination: &str,
    created: Vec<OutgoingTransfer>,
    response: CloneBatchInitiationResponse,
) -> anyhow::Result<()> {
    let node = context.node();
    let staged: std::collections::HashMap<u64, (u64, String)> = response
        .uploads
        .iter()
        .filter_map(|u| {
            let source = u64::try_from(u.source_transfer_id).ok()?;
            let remote = u64::try_from(u.destination_transfer_id).ok()?;
            Some((source, (remote, u.staging_location.clone())))
        })
        .collect();
    let destination_ids: Vec<u64> = staged.values().map(|(id, _)| *id).collect();
    let (accepted, missing): (Vec<OutgoingTransfer>, Vec<OutgoingTransfer>) = created
        .into_iter()
        .partition(|t| staged.contains_key(&t.id));
    fail_transfers(
        context,
        None,
        destination,
        missing.iter().map(|t| t.id).collect(),
        Vec::new(),
        "the destination's clone/batch_stage answer left the file out",
    )?;
    let here = node.config.advertised_hostnames();
    let provider = match choose_provider(&here, &Bounds::of(node), &response) {
        Ok(provider) => provider,
        Err(reason) => {
            record_failed_batch(node, destination, &accepted, &staged, &reason)?;
            fail_transfers(
                context,
                Some(client),
                destination,
                accepted.iter().map(|t| t.id).collect(),
                destination_ids,
                &reason,
            )?;
            context.item_failed(reason);
            return Ok(());
        }
    };
    let items: Vec<SendItem> = accepted
        .iter()
        .map(|t| {
            let (remote, location) = staged[&t.id].clone();
            SendItem {
                outgoing_id: t.id,
                destination_transfer_id: remote,
                file_name: t.file_name.clone(),
                size: t.transfer_size,
                staging_location: location,
                failure: None,
            }
        })
        .collect();
    let destination_name = destination.to_string();
    let item = node.db.write_blocking(move |txn| {
        let now = Timestamp::now();
        let item = SendQueueItem {
            id: next_id(txn, "send_queue")?,
            priority: 0,
            created: now,
            destination: destination_name,
            provider,
            items,
            state: SendState::Queued,
            retries: 0,
            not_before: now,
            last_failure: None,
            bytes_moved: 0,
            moved_time: None,
            end_time: None,
        };
        for send in &item.items {
            if let Some(mut transfer) = transfers::get_outgoing(txn, send.outgoing_id)? {
                transfer.remote_transfer_id = Some(send.destination_transfer_id);
                transfers::put_outgoing(txn, &transfer)?;
            }
        }
        send_queue::put_item(txn, &item)?;
        Ok(Ok::<_, DbError>(item))
    })?;
    tracing::info!(%destination, batch = item.id, files = item.items.len(),
        bytes = item.total_bytes(), provider = provider.wire_name(), "clone batch queued");
    mark_ongoing(context, client, &item)?;
    context.item_done();
    Ok(())
}

/// Tells the destination the batch is ONGOING, and records it so here. A
/// destination that does not hear it still goes from INITIATED to STAGED later.
fn mark_ongoing(
    context: &TaskContext,
    client: &LibrarianClient,
    item: &SendQueueItem,
) -> Result<(), DbError> {
    let request = CheckinUpdateRequest {
        source_transfer_ids: Vec::new(),
        destination_transfer_ids: pending(item)
            .map(|i| i.destination_transfer_id as i64)
            .collect(),
        new_status: TransferStatus::Ongoing,
    };
    if let Err(error) = context.block_on(client.checkin_update(&request)) {
        tracing::info!(destination = %item.destination, %error,
            "cannot tell the destination the batch is ongoing; it is sent anyway");
    }
    let ids: Vec<u64> = pending(item).map(|i| i.outgoing_id).collect();
    context.node().db.write_blocking(move |txn| {
        for id in ids {
            if let Some(mut transfer) = transfers::get_outgoing(txn, id)?
                && transfer.status == TransferStatus::Initiated
            {
                transfer.status = TransferStatus::Ongoing;
                transfers::put_outgoing(txn, &transfer)?;
            }
        }
        Ok(Ok::<_, DbError>(()))
    })
}

/// A batch that could not be queued, kept (FAILED) so that `quire transfers`
/// shows the reason.
fn record_failed_batch(
    node: &Node,
    destination: &str,
    accepted: &[OutgoingTransfer],
    staged: &std::collections::HashMap<u64, (u64, String)>,
    reason: &str,
) -> Result<(), DbError> {
    let items: Vec<SendItem> = accepted
        .iter()
        .map(|t| SendItem {
            outgoing_id: t.id,
            destination_transfer_id: staged.get(&t.id).map_or(0, |s| s.0),
            file_name: t.file_name.clone(),
            size: t.transfer_size,
            staging_location: staged.get(&t.id).map(|s| s.1.clone()).unwrap_or_default(),
            failure: None,
        })
        .collect();
    let destination = destination.to_string();
    let reason = reason.to_string();
    node.db.write_blocking(move |txn| {
        let now = Timestamp::now();
        let item = SendQueueItem {
            id: next_id(txn, "send_queue")?,
            priority: 0,
            created: now,
            destination,
            provider: SendProvider::QuireHttp,
            items,
            state: SendState::Failed,
            retries: 0,
            not_before: now,
            last_failure: Some(reason),
            bytes_moved: 0,
            moved_time: None,
            end_time: Some(now),
        };
        send_queue::put_item(txn, &item)?;
        Ok(Ok::<_, DbError>(()))
    })
}

/// A 409 from `clone/batch_stage`: some file of the batch exists at the
/// destination. Each is looked up there: held with the same bytes, its transfer
/// completes with a remote instance; held with other bytes, it is a conflict and
/// is not offered again; absent, its transfer fails and is offered again.
fn already_there(
    context: &TaskContext,
    client: &LibrarianClient,
    destination: &str,
    created: Vec<OutgoingTransfer>,
    reason: &str,
) -> anyhow::Result<()> {
    let node = context.node();
    let mut retry_later = Vec::new();
    for transfer in created {
        let found = match context.block_on(client.find_file(&transfer.file_name)) {
            Ok(found) => found,
            Err(_) => {
                retry_later.push(transfer.id);
                continue;
            }
        };
        match (found.is_some(), verdict(&transfer, found)) {
            (_, holds @ Verdict::Holds { .. }) => settle(context, transfer, holds)?,
            (true, Verdict::Lacks(why)) => {
                let conflict = format!(
                    "{destination} already holds {} with other bytes ({why})",
                    transfer.file_name
                );
                let (name, peer) = (transfer.file_name.clone(), destination.to_string());
                let recorded = conflict.clone();
                node.db.write_blocking(move |txn| {
                    send_queue::put_conflict(txn, &peer, &name, &recorded)?;
                    Ok(Ok::<_, DbError>(()))
                })?;
                fail_transfers(
                    context,
                    None,
                    destination,
                    vec![transfer.id],
                    Vec::new(),
                    &conflict,
                )?;
                context.item_failed(conflict);
            }
            (false, Verdict::Lacks(_)) => retry_later.push(transfer.id),
        }
    }
    fail_transfers(
        context,
        None,
        destination,
        retry_later,
        Vec::new(),
        &format!("the batch was refused ({reason}); the files are offered again next run"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::protocol::clone::CloneBatchStaged;
    use crate::protocol::upload::TransferProvider;

    fn offer(providers: &[(&str, &[&str])], staging: &str) -> CloneBatchInitiationResponse {
        CloneBatchInitiationResponse {
            available_bytes_on_store: 1,
            store_name: "main".into(),
            uploads: vec![CloneBatchStaged {
                staging_name: "s".into(),
                staging_location: staging.into(),
                upload_name: "f".into(),
                destination_location: "f".into(),
                source_transfer_id: 1,
                destination_transfer_id: 2,
            }],
            async_transfer_providers: providers
                .iter()
                .map(|(name, hosts)| {
                    let hostnames = hosts.iter().map(|h| h.to_string()).collect();
                    (name.to_string(), TransferProvider { hostnames })
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn bounds() -> Bounds {
        Bounds {
            allowed: vec![std::env::temp_dir()],
            own: Vec::new(),
        }
    }

    #[test]
    fn a_shared_filesystem_takes_local_and_a_quire_peer_elsewhere_quire_http() {
        let here = vec!["site-a".to_string()];
        let staging = std::env::temp_dir().join("f");
        let staging = staging.to_str().unwrap();
        let both = offer(&[("local", &["site-a"]), ("quire_http", &[])], staging);
        assert_eq!(
            choose_provider(&here, &bounds(), &both),
            Ok(SendProvider::Local)
        );
        let elsewhere = offer(&[("local", &["site-b"]), ("quire_http", &[])], staging);
        assert_eq!(
            choose_provider(&here, &bounds(), &elsewhere),
            Ok(SendProvider::QuireHttp)
        );
        let unreachable = offer(
            &[("local", &["site-a"]), ("quire_http", &[])],
            "/no/such/dir/f",
        );
        assert_eq!(
            choose_provider(&here, &bounds(), &unreachable),
            Ok(SendProvider::QuireHttp)
        );
    }

    #[test]
    fn no_provider_in_common_says_what_was_offered_and_what_to_do() {
        let here = vec!["site-a".to_string()];
        let other_host = offer(&[("local", &["site-b"])], "/tmp/f");
        let reason = choose_provider(&here, &bounds(), &other_host).unwrap_err();
        assert!(
            reason.contains("site-b") && reason.contains("local_hostnames"),
            "{reason}"
        );
        let foreign = offer(&[("rsync", &[]), ("globus", &[])], "/tmp/f");
        let reason = choose_provider(&here, &bounds(), &foreign).unwrap_err();
        assert!(
            reason.contains("rsync") && reason.contains("globus"),
            "{reason}"
        );
        assert!(reason.contains("quire_http"), "{reason}");
    }
}
