//! Closing incoming transfers that cannot complete, and removing their staging.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::db::repo::transfers;
use crate::db::{DbError, WriteTxn};
use crate::fsroot::{Dir, Kind};
use crate::model::{IncomingTransfer, Timestamp, TransferStatus};
use crate::node::Node;
use crate::store::GivenBack;
use crate::store::durable::remove_in;

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
        // Removed from the staging area symlink-free: a link in place of the
        // staged data is removed itself, never followed.
        let removed = staged_path(node, transfer)
            .map(|(staging, staged)| staging.and_then(|s| remove_in(&s, &staged)));
        if let Some(Err(error)) = removed {
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
        if let Some(store) = node.stores.by_id(transfer.store_id)
            && store.staging_dir(&transfer.staging_name).is_some()
        {
            directories.insert((store.id, transfer.staging_name.clone()));
        }
    }
    for (store_id, staging_name) in directories {
        if let Some(store) = node.stores.by_id(store_id)
            && let Ok(staging) = store.staging_root()
        {
            remove_if_empty(&staging, Path::new(&staging_name));
        }
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

/// Where a transfer's bytes are staged: its store's staging area (opened) and
/// the path there.
fn staged_path(
    node: &Node,
    transfer: &IncomingTransfer,
) -> Option<(std::io::Result<Dir>, PathBuf)> {
    let store = node.stores.by_id(transfer.store_id)?;
    store.staging_dir(&transfer.staging_name)?;
    let staged = Path::new(&transfer.staging_name).join(&transfer.upload_name);
    Some((store.staging_root(), staged))
}

/// Removes the staging directory `name` of `staging` (and the empty directories
/// a nested upload name made inside it) unless something else is still staged
/// there. Walked symlink-free: a link inside is left, and keeps its directory.
fn remove_if_empty(staging: &Dir, name: &Path) {
    let Ok(directory) = staging.open_dir(name) else {
        return;
    };
    let mut inner: Vec<PathBuf> = Vec::new();
    let _ = directory.walk(&mut |entry| {
        if entry.kind == Kind::Dir {
            inner.push(entry.relative.to_path_buf());
        }
        crate::fsroot::Visit::Continue
    });
    // Deepest first; each fails, harmlessly, on a directory that still holds
    // staged data.
    for dir in inner.iter().rev() {
        let _ = directory.remove_dir(dir);
    }
    let _ = staging.remove_dir(name);
}
