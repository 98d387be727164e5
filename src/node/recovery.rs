//! Start-up recovery: put the stores back in a state every record agrees with.
//!
//! After a crash at any moment:
//! - bytes renamed into a store whose commit never reached the database are moved
//!   back into their transfer's staging (the client may retry the commit);
//! - transfers that can no longer complete (store gone, name taken elsewhere or
//!   nested with a recorded file, idle for longer than `staging_expiry`) are failed
//!   and their staging removed; the others get back the space reserved for them;
//! - staging directories that belong to no live transfer are removed;
//! - files a batch upload named in a store but never recorded are taken back
//!   (after the transfers above, so that bytes an interrupted commit renamed into
//!   a store are restored to staging first).
//!
//! Committed files are never touched: a path that a File record's instance points
//! at is never moved or removed here.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Node;
use crate::db::DbError;
use crate::db::repo::{files, transfers};
use crate::fsroot::{Kind, Meta, Visit};
use crate::ingest::recover_upload_intents;
use crate::ingest::transfer_state::{discard_staging_of, fail_in};
use crate::model::IncomingTransfer;
use crate::store::Store;

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Interrupted commits whose bytes went back to staging.
    pub restored_commits: usize,
    /// Transfers failed because they could not complete.
    pub failed_transfers: usize,
    /// Staging directories removed because no live transfer owned them.
    pub removed_staging: usize,
    /// Files of interrupted batch uploads taken back out of a store.
    pub taken_back_uploads: usize,
}

/// When recovery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Before the node serves requests: everything half done belongs to the past.
    StartUp,
    /// While requests are served: a commit may be between its rename and its record,
    /// so bytes in a store are never moved, and staging younger than `min_age` may
    /// belong to a stage whose record is not committed yet.
    Sweep { min_age: Duration },
}

/// Runs recovery.
pub fn recover(node: &Node, mode: RecoveryMode) -> Result<RecoveryReport, DbError> {
    let min_orphan_age = match mode {
        RecoveryMode::StartUp => Duration::ZERO,
        RecoveryMode::Sweep { min_age } => min_age,
    };
    let mut report = RecoveryReport::default();
    let listed = list_staging(node);
    let live = node.db.read(transfers::live_incoming)?;
    let mut keep = HashSet::new();
    for transfer in live {
        if settle_transfer(node, &transfer, mode, &mut report)? {
            keep.insert((transfer.store_id, transfer.staging_name.clone()));
            if let (RecoveryMode::StartUp, Some(store)) =
                (mode, node.stores.by_id(transfer.store_id))
            {
                let staged = store
                    .staging
                    .join(&transfer.staging_name)
                    .join(&transfer.upload_name);
                node.reservations.restore(&transfer, staged);
            }
        }
    }
    for (store_id, staging_name, age) in listed {
        if keep.contains(&(store_id, staging_name.clone())) || age < min_orphan_age {
            continue;
        }
        if let Some(store) = node.stores.by_id(store_id) {
            match store.remove_staging(&staging_name) {
                Ok(()) => report.removed_staging += 1,
                Err(error) => {
                    tracing::warn!(%staging_name, %error, "cannot remove orphaned staging")
                }
            }
        }
    }
    if mode == RecoveryMode::StartUp {
        report.taken_back_uploads = recover_upload_intents(node)?.taken_back;
    }
    if report != RecoveryReport::default() {
        tracing::info!(?report, "recovery finished");
    }
    Ok(report)
}

/// Every staging directory of every available store, with its age.
fn list_staging(node: &Node) -> Vec<(u64, String, Duration)> {
    let mut listed = Vec::new();
    for store in node.stores.all().iter().filter(|s| s.available()) {
        match store.staging_names() {
            Ok(names) => {
                for name in names {
                    let age = age_of(store, &name).unwrap_or_default();
                    listed.push((store.id, name, age));
                }
            }
            Err(error) => tracing::warn!(store = %store.name, %error, "cannot list staging"),
        }
    }
    listed
}

/// Time since the newest change anywhere in the staging directory
/// `staging_name` of `store` (`None` if it is not a directory there), looked at
/// symlink-free: clients write there.
fn age_of(store: &Store, staging_name: &str) -> Option<Duration> {
    let staging = store.staging_root().ok()?;
    let directory = staging.open_dir(Path::new(staging_name)).ok()?;
    let mtime = |meta: &Meta| {
        let seconds = u64::try_from(meta.mtime.0).unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::new(seconds, meta.mtime.1 as u32)
    };
    let mut newest = directory
        .meta()
        .map(|m| mtime(&m))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let _ = directory.walk_skipping(
        &mut |entry| {
            if let Ok(meta) = entry.meta() {
                newest = newest.max(mtime(&meta));
            }
            Visit::Continue
        },
        &mut |_, _| {},
    );
    Some(SystemTime::now().duration_since(newest).unwrap_or_default())
}

/// Brings one live transfer to a consistent state; returns whether it stays live.
fn settle_transfer(
    node: &Node,
    transfer: &IncomingTransfer,
    mode: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<bool, DbError> {
    let store = node.stores.by_id(transfer.store_id);
    // A recorded file of that name, inside which it would lie, or under it: the
    // transfer can never complete, and what is at its name belongs to that file.
    let taken = node
        .db
        .read(|tx| files::obstacle(tx, &transfer.destination_location))?
        .is_some();
    let age = store
        .filter(|s| s.staging_dir(&transfer.staging_name).is_some())
        .and_then(|s| age_of(s, &transfer.staging_name));
    let expired = age.is_none_or(|age| age > node.config.staging_expiry);
    // An interrupted commit's bytes go back to staging first, whatever happens to the
    // transfer next: if it is failed, they are removed with its staging. Only at
    // start-up: while serving, those bytes may belong to a commit in progress.
    if let (Some(store), false, RecoveryMode::StartUp) = (store, taken, mode) {
        let staged_relative = Path::new(&transfer.staging_name).join(&transfer.upload_name);
        let staged_absent = store
            .staging_root()
            .and_then(|s| s.try_stat(&staged_relative))
            .is_ok_and(|found| found.is_none());
        let committed = Path::new(&transfer.destination_location);
        if staged_absent && size_of(store, committed) == Some(transfer.transfer_size) {
            match store.uncommit(&transfer.destination_location, &staged_relative) {
                Ok(()) => report.restored_commits += 1,
                Err(error) => {
                    tracing::error!(transfer = transfer.id, %error, "cannot restore an interrupted commit")
                }
            }
        }
    }
    if store.is_none() || taken || expired {
        fail(node, transfer.id)?;
        report.failed_transfers += 1;
        return Ok(false);
    }
    Ok(true)
}

/// The size of the file or tree at `<store root>/<relative>` (the sum of its
/// regular files), if something is there; looked at symlink-free.
fn size_of(store: &Store, relative: &Path) -> Option<u64> {
    let root = store.root_dir().ok()?;
    let meta = root.try_stat(relative).ok()??;
    match meta.kind {
        Kind::File => Some(meta.size),
        Kind::Dir => {
            let tree = root.open_dir(relative).ok()?;
            let mut size = 0;
            tree.walk(&mut |entry| {
                if entry.kind == Kind::File
                    && let Ok(meta) = entry.meta()
                {
                    size += meta.size;
                }
                Visit::Continue
            })
            .ok()?;
            Some(size)
        }
        Kind::Symlink | Kind::Special => None,
    }
}

fn fail(node: &Node, id: u64) -> Result<(), DbError> {
    let failed = node
        .db
        .write_blocking(move |txn| Ok(Ok::<_, DbError>(fail_in(txn, id)?)))?;
    if let Some(transfer) = failed {
        discard_staging_of(node, &[transfer]);
    }
    Ok(())
}
