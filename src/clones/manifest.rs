//! `admin/stores/manifest`: the list of every available file on a store, written
//! when a SneakerNet drive leaves. Optionally, in the same transaction: the store is
//! disabled, each listed file gets an ONGOING outgoing transfer to the destination,
//! and the listed instances are marked unavailable.
//!
//! Differences from the reference, which changes the database entry by entry:
//! everything is checked (store, destination) before anything changes, all changes
//! are one transaction, and a file that already has a live outgoing transfer to the
//! destination reuses it instead of getting a second one, so writing the manifest
//! again lists the same transfer ids.

use std::collections::HashMap;
use std::sync::Arc;

use super::CloneError;
use crate::db::repo::{files, instances, librarians, next_ids, stores, transfers};
use crate::model::{Instance, OutgoingTransfer, StoreState, Timestamp, TransferStatus};
use crate::node::Node;
use crate::protocol::manifest::{ManifestEntry, StoreManifestResponse};

/// The options of a manifest request.
#[derive(Debug, Clone, Default)]
pub struct ManifestOptions {
    pub store_name: String,
    /// Create (or reuse) an ONGOING outgoing transfer per file to this peer.
    pub outgoing_to: Option<String>,
    pub disable_store: bool,
    pub mark_unavailable: bool,
}

/// Builds the manifest of a store, applying the options.
pub async fn build_manifest(
    node: &Arc<Node>,
    options: ManifestOptions,
) -> Result<StoreManifestResponse, CloneError> {
    let store = node
        .stores
        .by_name(&options.store_name)
        .cloned()
        .ok_or_else(|| CloneError::UnknownStore(options.store_name.clone()))?;
    let librarian_name = node.config.name.clone();
    let store_state = StoreState {
        id: store.id,
        name: store.name.clone(),
        enabled: false,
    };
    let manifest = node
        .db
        .write(move |txn| {
            if let Some(peer) = &options.outgoing_to
                && librarians::get_librarian(txn, peer)?.is_none()
            {
                return Ok(Err(CloneError::UnknownLibrarian(peer.clone())));
            }
            if options.disable_store {
                stores::put_store(txn, &store_state)?;
            }
            let mut listed: Vec<Instance> = Vec::new();
            for id in instances::ids_of_store(txn, store_state.id)? {
                if let Some(instance) = instances::get_instance(txn, id)?
                    && instance.available
                {
                    listed.push(instance);
                }
            }
            let transfer_ids = match &options.outgoing_to {
                Some(peer) => outgoing_transfers(txn, peer, &listed)?,
                None => vec![-1; listed.len()],
            };
            let mut entries = Vec::with_capacity(listed.len());
            let mut unavailable = Vec::new();
            for (instance, transfer_id) in listed.into_iter().zip(transfer_ids) {
                let Some(file) = files::get_file(txn, &instance.file_name)? else {
                    continue;
                };
                entries.push(ManifestEntry {
                    name: file.name,
                    create_time: file.create_time,
                    size: file.size,
                    checksum: file.checksum.to_string(),
                    uploader: file.uploader,
                    source: file.source,
                    instance_path: instance.path.clone(),
                    deletion_policy: instance.deletion_policy,
                    instance_create_time: instance.created_time,
                    instance_available: instance.available,
                    outgoing_transfer_id: transfer_id,
                });
                if options.mark_unavailable {
                    unavailable.push(Instance {
                        available: false,
                        ..instance
                    });
                }
            }
            instances::put_instances(txn, &unavailable)?;
            Ok(Ok(StoreManifestResponse {
                librarian_name,
                store_name: store_state.name,
                store_files: entries,
            }))
        })
        .await?;
    if options.disable_store {
        store.set_enabled(false);
        tracing::info!(store = %store.name, "store disabled by a manifest request");
    }
    Ok(manifest)
}

/// For each instance, the id of its live outgoing transfer to `peer`, created
/// ONGOING (a SneakerNet copy is under way as soon as the drive leaves) when it has
/// none.
fn outgoing_transfers(
    txn: &crate::db::WriteTxn,
    peer: &str,
    listed: &[Instance],
) -> Result<Vec<i64>, crate::db::DbError> {
    let live: HashMap<String, u64> = transfers::live_outgoing_to(txn, peer)?
        .into_iter()
        .map(|t| (t.file_name, t.id))
        .collect();
    let missing = listed
        .iter()
        .filter(|i| !live.contains_key(&i.file_name))
        .count() as u64;
    let mut next = if missing > 0 {
        next_ids(txn, "outgoing_transfers", missing)?
    } else {
        0
    };
    let now = Timestamp::now();
    let mut created = Vec::new();
    let mut ids = Vec::with_capacity(listed.len());
    for instance in listed {
        if let Some(id) = live.get(&instance.file_name) {
            ids.push(*id as i64);
            continue;
        }
        let Some(file) = files::get_file(txn, &instance.file_name)? else {
            ids.push(-1);
            continue;
        };
        created.push(OutgoingTransfer {
            id: next,
            status: TransferStatus::Ongoing,
            destination: peer.to_string(),
            file_name: file.name,
            transfer_size: file.size,
            transfer_checksum: file.checksum,
            source_path: instance.path.clone(),
            start_time: now,
            end_time: None,
            remote_transfer_id: None,
        });
        ids.push(next as i64);
        next += 1;
    }
    transfers::put_outgoing_all(txn, &created)?;
    Ok(ids)
}
