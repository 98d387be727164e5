//! `admin/stores/manifest`: the list of every available file on a store, written
//! when a SneakerNet drive leaves. Optionally, in the same transaction: the store is
//! disabled, each listed file gets an ONGOING outgoing transfer to the destination,
//! and the listed instances are marked unavailable.
//!
//! Differences from the reference, which changes the database entry by entry:
//! everything is checked (store, destination) before anything changes, all changes
//! are one transaction, and a file that already has a live outgoing transfer to the
//! destination reuses it instead of getting a second one, so writing the manifest
//! again lists the same transfer ids. A manifest that changes nothing is read
//! without taking the writer.

use std::collections::HashMap;
use std::sync::Arc;

use super::CloneError;
use crate::db::repo::{files, instances, librarians, next_ids, stores, transfers};
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{File, Instance, OutgoingTransfer, StoreState, Timestamp, TransferStatus};
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

impl ManifestOptions {
    fn changes_anything(&self) -> bool {
        self.outgoing_to.is_some() || self.disable_store || self.mark_unavailable
    }
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
    let mut manifest = StoreManifestResponse {
        librarian_name: node.config.name.clone(),
        store_name: store.name.clone(),
        store_files: Vec::new(),
    };
    if !options.changes_anything() {
        let listed = node.db.read(|tx| available_files(tx, store.id))?;
        manifest.store_files = listed
            .into_iter()
            .map(|(instance, file)| entry(file, &instance, -1))
            .collect();
        return Ok(manifest);
    }
    let state = StoreState {
        id: store.id,
        name: store.name.clone(),
        enabled: false,
    };
    let disable = options.disable_store;
    manifest.store_files = node
        .db
        .write(move |txn| apply(txn, &options, &state))
        .await?;
    if disable {
        store.set_enabled(false);
        tracing::info!(store = %store.name, "store disabled by a manifest request");
    }
    Ok(manifest)
}

/// The write job of a manifest that changes something.
fn apply(
    txn: &WriteTxn,
    options: &ManifestOptions,
    state: &StoreState,
) -> crate::db::WriteJobResult<Vec<ManifestEntry>, CloneError> {
    if let Some(peer) = &options.outgoing_to
        && librarians::get_librarian(txn, peer)?.is_none()
    {
        return Ok(Err(CloneError::UnknownLibrarian(peer.clone())));
    }
    if options.disable_store {
        stores::put_store(txn, state)?;
    }
    let listed = available_files(txn, state.id)?;
    let transfer_ids = match &options.outgoing_to {
        Some(peer) => outgoing_transfers(txn, peer, &listed)?,
        None => vec![-1; listed.len()],
    };
    let mut entries = Vec::with_capacity(listed.len());
    let mut unavailable = Vec::new();
    for ((instance, file), transfer_id) in listed.into_iter().zip(transfer_ids) {
        entries.push(entry(file, &instance, transfer_id));
        if options.mark_unavailable {
            unavailable.push(Instance {
                available: false,
                ..instance
            });
        }
    }
    instances::put_instances(txn, &unavailable)?;
    Ok(Ok(entries))
}

/// The available instances of a store, with their files, oldest first.
fn available_files(tx: &impl Reads, store_id: u64) -> Result<Vec<(Instance, File)>, DbError> {
    let mut listed = Vec::new();
    for id in instances::ids_of_store(tx, store_id)? {
        let Some(instance) = instances::get_instance(tx, id)? else {
            continue;
        };
        if !instance.available {
            continue;
        }
        if let Some(file) = files::get_file(tx, &instance.file_name)? {
            listed.push((instance, file));
        }
    }
    Ok(listed)
}

fn entry(file: File, instance: &Instance, outgoing_transfer_id: i64) -> ManifestEntry {
    ManifestEntry {
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
        outgoing_transfer_id,
    }
}

/// For each listed file, the id of its live outgoing transfer to `peer`, created
/// ONGOING (a SneakerNet copy is under way as soon as the drive leaves) when it has
/// none.
fn outgoing_transfers(
    txn: &WriteTxn,
    peer: &str,
    listed: &[(Instance, File)],
) -> Result<Vec<i64>, DbError> {
    let mut live: HashMap<String, u64> = transfers::live_outgoing_to(txn, peer)?
        .into_iter()
        .map(|t| (t.file_name, t.id))
        .collect();
    let missing = listed
        .iter()
        .filter(|(_, file)| !live.contains_key(&file.name))
        .count() as u64;
    let mut next = if missing > 0 {
        next_ids(txn, "outgoing_transfers", missing)?
    } else {
        0
    };
    let now = Timestamp::now();
    let mut created = Vec::new();
    let mut ids = Vec::with_capacity(listed.len());
    for (instance, file) in listed {
        if let Some(id) = live.get(&file.name) {
            ids.push(*id as i64);
            continue;
        }
        created.push(OutgoingTransfer::of_copy(
            next,
            TransferStatus::Ongoing,
            peer,
            file,
            instance,
            now,
        ));
        live.insert(file.name.clone(), next);
        ids.push(next as i64);
        next += 1;
    }
    transfers::put_outgoing_all(txn, &created)?;
    Ok(ids)
}
