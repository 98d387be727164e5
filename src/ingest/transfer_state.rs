//! Closing incoming transfers that cannot complete, and removing their staging.

use std::collections::BTreeSet;

use crate::db::repo::transfers;
use crate::db::{DbError, WriteTxn};
use crate::model::{IncomingTransfer, Timestamp, TransferStatus};
use crate::node::Node;
use crate::store::GivenBack;
use crate::store::durable::remove_path;

/// Marks a live transfer FAILED inside a write job; returns it if it changed.
pub fn fail_in(txn: &WriteTxn, id: u64) -> Result<Option<IncomingTransfer>, DbError> {
    let Some(mut transfer) = transfers::get_incoming(txn, id)? else {
        return Ok(None);
    };
    if transfer.status.is_terminal() {
        return Ok(None);
    }
    transfer.status = TransferStatus::Failed;
    transfer.end_time = Some(Timestamp::now());
    transfers::put_incoming(txn, &transfer)?;
    Ok(Some(transfer))
}

/// Removes what the transfers staged, releases the space reserved for them and
/// forgets their staged digests; each staging directory is removed once it holds
/// nothing else (a batch shares one). Blocking.
pub fn discard_staging_of(node: &Node, transfers: &[IncomingTransfer]) {
    node.reservations
        .release_transfers(transfers.iter().map(|t| t.id));
    for transfer in transfers {
        if let Some(staged) = staged_path(node, transfer)
            && let Err(error) = remove_path(&staged)
        {
            tracing::warn!(transfer = transfer.id, %error, "cannot remove staged data");
        }
    }
    remove_staging_dirs(node, transfers, |node, transfer| {
        node.staged_digests.forget(transfer.id);
        if let Some(store) = node.stores.by_id(transfer.store_id) {
            store.forget_staging(&transfer.staging_name);
        }
        false
    });
}

/// After the transfers' staged data moved into a store: forgets their staged
/// digests and removes their staging directories once empty (or gives them back,
/// see [`give_back_staging`]). Blocking.
pub fn remove_emptied_staging(node: &Node, transfers: &[IncomingTransfer]) {
    remove_staging_dirs(node, transfers, give_back_staging);
}

/// Removes the staging directories of `transfers` once empty, except those that
/// `kept` (called once per transfer) took care of.
fn remove_staging_dirs(
    node: &Node,
    transfers: &[IncomingTransfer],
    kept: impl Fn(&Node, &IncomingTransfer) -> bool,
) {
    let mut directories = BTreeSet::new();
    for transfer in transfers {
        if kept(node, transfer) {
            continue;
        }
        if let Some(directory) = node
            .stores
            .by_id(transfer.store_id)
            .and_then(|store| store.staging_dir(&transfer.staging_name))
        {
            directories.insert(directory);
        }
    }
    for directory in directories {
        remove_if_empty(&directory);
    }
}

/// After a transfer's staged data moved into a store: forgets its staged digests
/// and, if its staging directory was lent to it alone and the data left it empty,
/// gives the directory back to its store for the next upload. Returns whether that
/// happened (else the directory is still to be removed). Never blocks.
pub fn give_back_staging(node: &Node, transfer: &IncomingTransfer) -> bool {
    node.staged_digests.forget(transfer.id);
    let Some(store) = node.stores.by_id(transfer.store_id) else {
        return false;
    };
    // A nested upload name leaves its parent directories behind.
    let emptied = !transfer.upload_name.contains('/');
    store.give_back_staging(&transfer.staging_name, emptied) == GivenBack::Kept
}

/// Where a transfer's bytes are staged.
fn staged_path(node: &Node, transfer: &IncomingTransfer) -> Option<std::path::PathBuf> {
    let store = node.stores.by_id(transfer.store_id)?;
    Some(
        store
            .staging_dir(&transfer.staging_name)?
            .join(&transfer.upload_name),
    )
}

/// Removes a staging directory (and the empty directories a nested upload name
/// made inside it) unless something else is still staged there.
fn remove_if_empty(directory: &std::path::Path) {
    let mut empty_dirs: Vec<std::path::PathBuf> = walkdir::WalkDir::new(directory)
        .contents_first(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    empty_dirs.retain(|d| d.starts_with(directory));
    for dir in empty_dirs {
        // Fails, harmlessly, on a directory that still holds staged data.
        let _ = std::fs::remove_dir(dir);
    }
}
