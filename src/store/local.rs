//! A local POSIX store: a root directory holding each file at `<root>/<name>`, and a
//! staging directory on the same filesystem where uploads land before commit.
//!
//! Invariant: a committed path is only ever created by an atomic no-replace rename
//! from staging, after the staged bytes and the new directory entries are synced.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::durable::{
    create_dirs_durably, make_dir, remove_path, rename_no_replace, sync_all_parallel, sync_dir,
    sync_filesystem,
};
use super::shared_sync::SharedDirSyncs;
use super::staging_pool::{GivenBack, StagingPool};
use crate::config::StoreConfig;

/// Batches of at least this many items are made durable with one sync of the
/// whole filesystem instead of one fsync per item.
const SYNCFS_MIN_ITEMS: usize = 16;

fn clone_result(result: &io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
    }
}

/// A store the node runs.
#[derive(Debug)]
pub struct Store {
    /// Stable id (from the database).
    pub id: u64,
    pub name: String,
    pub root: PathBuf,
    pub staging: PathBuf,
    pub ingestable: bool,
    pub report_full_fraction: f64,
    pub group_write_after_stage: bool,
    pub own_after_commit: bool,
    pub readonly_after_commit: bool,
    /// Mirrors the database's enabled flag (the database is the authority).
    enabled: AtomicBool,
    /// Availability at the last `observe_availability`, so that an outage is
    /// reported once when it starts and once when it ends, never per file.
    seen_available: AtomicBool,
    /// Staging directories of single uploads, reused once emptied.
    staging_pool: StagingPool,
    /// Directory syncs shared by concurrent commits.
    dir_syncs: SharedDirSyncs,
}

/// What `observe_availability` saw change since it last looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvailabilityChange {
    Unchanged,
    /// The store's root disappeared (a drive was unplugged).
    WentAway,
    /// The store's root is back.
    CameBack,
}

/// Disk usage of a store as the protocol reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes that may still be written before the store counts as full.
    pub free: u64,
    pub total: u64,
}

impl Store {
    /// Builds a store from its configuration; paths are already resolved.
    pub fn new(
        id: u64,
        config: &StoreConfig,
        root: PathBuf,
        staging: PathBuf,
        enabled: bool,
    ) -> Store {
        Store {
            id,
            name: config.name.clone(),
            root,
            staging,
            ingestable: config.ingestable,
            report_full_fraction: config.report_full_fraction,
            group_write_after_stage: config.group_write_after_stage,
            own_after_commit: config.own_after_commit,
            readonly_after_commit: config.readonly_after_commit,
            enabled: AtomicBool::new(enabled),
            seen_available: AtomicBool::new(true),
            staging_pool: StagingPool::default(),
            dir_syncs: SharedDirSyncs::default(),
        }
    }

    /// Whether the store may receive data.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Records a change of the enabled flag (after the database committed it).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether the store's directories are present (a drive may be unplugged). A
    /// drive plugged back in whose staging directory is missing (never made, or
    /// made on another drive) gets a new one, but only when the directory holding
    /// it is present: nothing is created where the drive should be mounted.
    pub fn available(&self) -> bool {
        if !self.root.is_dir() {
            return false;
        }
        if self.staging.is_dir() {
            return true;
        }
        let parent_present = self.staging.parent().is_some_and(Path::is_dir);
        // Another caller may create it at the same moment: look again either way.
        parent_present && (fs::create_dir(&self.staging).is_ok() || self.staging.is_dir())
    }

    /// Whether the store is available, and how that changed since the previous
    /// call (the first call compares with "available").
    pub fn observe_availability(&self) -> (bool, AvailabilityChange) {
        let now = self.available();
        let before = self.seen_available.swap(now, Ordering::SeqCst);
        let change = match (before, now) {
            (true, false) => AvailabilityChange::WentAway,
            (false, true) => AvailabilityChange::CameBack,
            _ => AvailabilityChange::Unchanged,
        };
        (now, change)
    }

    /// Creates the root and staging directories if missing.
    pub fn prepare(&self) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        fs::create_dir_all(&self.staging)?;
        Ok(())
    }

    /// Free space: the smaller of the free space of root and staging, less the part
    /// of the disk that `report_full_fraction` holds back, floored at zero.
    pub fn space(&self) -> io::Result<Space> {
        let root = rustix::fs::statvfs(&self.root).map_err(io::Error::from)?;
        let staging = rustix::fs::statvfs(&self.staging).map_err(io::Error::from)?;
        let bytes = |blocks: u64, s: &rustix::fs::StatVfs| blocks.saturating_mul(s.f_frsize);
        let total = bytes(root.f_blocks, &root);
        let free = bytes(root.f_bavail, &root).min(bytes(staging.f_bavail, &staging));
        let reserved = (total as f64 * (1.0 - self.report_full_fraction)) as u64;
        Ok(Space {
            free: free.saturating_sub(reserved),
            total,
        })
    }

    /// Creates a fresh staging directory and returns its name.
    pub fn create_staging(&self) -> io::Result<String> {
        let name = uuid::Uuid::new_v4().to_string();
        let dir = self.staging.join(&name);
        make_dir(&dir)?;
        if self.group_write_after_stage {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o2775))?;
        }
        Ok(name)
    }

    /// A staging directory for one upload alone: an emptied one given back by an
    /// earlier upload (see `staging_pool`), or a new one. Returns its name.
    pub fn lend_staging(&self) -> io::Result<String> {
        if let Some(name) = self.lend_spare_staging() {
            return Ok(name);
        }
        let name = self.create_staging()?;
        self.staging_pool.lend_new(&name);
        Ok(name)
    }

    /// An emptied directory given back by an earlier upload, now lent to one upload
    /// alone, if there is one fit to be lent. A few quick system calls, no
    /// allocation on disk.
    pub fn lend_spare_staging(&self) -> Option<String> {
        self.staging_pool.lend_spare(&self.staging)
    }

    /// Takes back the staging directory of an upload that is over (committed or
    /// failed). `emptied` says nothing of the upload is left in it. `Remove` means
    /// the caller removes it as before (it was not lent, or there are spares
    /// enough).
    pub fn give_back_staging(&self, staging_name: &str, emptied: bool) -> GivenBack {
        self.staging_pool.give_back(staging_name, emptied)
    }

    /// The staging directory called `staging_name`, if the name is one this store
    /// could have made (a plain single path component).
    pub fn staging_dir(&self, staging_name: &str) -> Option<PathBuf> {
        let plain = !staging_name.is_empty()
            && !staging_name.contains('/')
            && staging_name != "."
            && staging_name != "..";
        plain.then(|| self.staging.join(staging_name))
    }

    /// Where the file called `name` lives in this store.
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Moves staged bytes to `<root>/<name>` durably: syncs the staged data, creates
    /// the parent directories durably, renames without replacing, and syncs the new
    /// entry's directory. `AlreadyExists` means the name is taken on disk.
    pub fn commit(&self, staged: &Path, name: &str) -> io::Result<PathBuf> {
        let item = [(staged.to_path_buf(), name.to_string())];
        self.commit_many(&item).pop().expect("one result per item")
    }

    /// Commits many staged items at once, paying for durability per batch rather
    /// than per item: the staged data of all items is made durable first (one
    /// filesystem sync for a large batch, parallel fsyncs for a small one), then
    /// each item is renamed into place, then the new directory entries are made
    /// durable the same way. Each item gets its own result; an item whose entry
    /// cannot be made durable is moved back to staging and reported as failed.
    pub fn commit_many(&self, items: &[(PathBuf, String)]) -> Vec<io::Result<PathBuf>> {
        let whole_filesystem = items.len() >= SYNCFS_MIN_ITEMS;
        let synced: Vec<io::Result<()>> = if whole_filesystem {
            let synced = sync_filesystem(&self.root);
            items.iter().map(|_| clone_result(&synced)).collect()
        } else {
            sync_all_parallel(items.iter().map(|(staged, _)| staged.as_path()))
        };
        let mut results: Vec<io::Result<PathBuf>> = Vec::with_capacity(items.len());
        let mut parents_ready: BTreeMap<PathBuf, io::Result<()>> = BTreeMap::new();
        let mut touched: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
        for (index, ((staged, name), synced)) in items.iter().zip(synced).enumerate() {
            let placed = synced.and_then(|()| {
                let target = self.file_path(name);
                let relative_parent = Path::new(name).parent().unwrap_or(Path::new(""));
                clone_result(
                    parents_ready
                        .entry(relative_parent.to_path_buf())
                        .or_insert_with(|| create_dirs_durably(&self.root, relative_parent)),
                )?;
                rename_no_replace(staged, &target)?;
                Ok(target)
            });
            if let Ok(target) = &placed {
                let parent = target.parent().unwrap_or(&self.root).to_path_buf();
                touched.entry(parent).or_default().push(index);
            }
            results.push(placed);
        }
        let entries_synced: Vec<(Vec<usize>, io::Result<()>)> = if whole_filesystem {
            let synced = sync_filesystem(&self.root);
            vec![(touched.into_values().flatten().collect(), synced)]
        } else {
            touched
                .into_iter()
                .map(|(directory, indexes)| (indexes, self.dir_syncs.sync_dir(&directory)))
                .collect()
        };
        for (indexes, synced) in entries_synced {
            let Err(error) = synced else { continue };
            for index in indexes {
                let (staged, name) = &items[index];
                if let Err(undo) = rename_no_replace(&self.file_path(name), staged) {
                    tracing::error!(%name, %undo, "cannot move an undurable commit back to staging");
                }
                results[index] = Err(io::Error::new(error.kind(), error.to_string()));
            }
        }
        for target in results.iter().flatten() {
            self.apply_commit_permissions(target);
        }
        results
    }

    /// Moves a committed-but-unrecorded path back into staging (used by recovery, so
    /// that a client retrying its commit finds its bytes where it left them).
    pub fn uncommit(&self, name: &str, staged: &Path) -> io::Result<()> {
        let target = self.file_path(name);
        if let Some(parent) = staged.parent() {
            fs::create_dir_all(parent)?;
        }
        rename_no_replace(&target, staged)?;
        sync_dir(target.parent().unwrap_or(&self.root))?;
        sync_dir(staged.parent().unwrap_or(&self.staging))
    }

    /// Forgets that a staging directory was lent (it is being removed).
    pub fn forget_staging(&self, staging_name: &str) {
        self.staging_pool.forget(staging_name);
    }

    /// Removes a staging directory and everything in it.
    pub fn remove_staging(&self, staging_name: &str) -> io::Result<()> {
        self.staging_pool.forget(staging_name);
        match self.staging_dir(staging_name) {
            Some(dir) => remove_path(&dir),
            None => Ok(()),
        }
    }

    /// Names of every staging directory present.
    pub fn staging_names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.staging)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn apply_commit_permissions(&self, target: &Path) {
        if !(self.own_after_commit || self.readonly_after_commit) {
            return;
        }
        let Ok(metadata) = fs::symlink_metadata(target) else {
            return;
        };
        if metadata.is_file() {
            self.apply_permissions(target, &metadata);
            return;
        }
        for entry in walkdir::WalkDir::new(target).into_iter().flatten() {
            if let Ok(metadata) = entry.metadata() {
                self.apply_permissions(entry.path(), &metadata);
            }
        }
    }

    /// Takes ownership of, and removes write permission from, one committed path,
    /// as configured. Failures are logged: the data is committed regardless.
    fn apply_permissions(&self, path: &Path, metadata: &fs::Metadata) {
        if self.own_after_commit {
            let uid = rustix::process::geteuid();
            let gid = rustix::process::getegid();
            if let Err(error) = rustix::fs::chown(path, Some(uid), Some(gid)) {
                tracing::warn!(path = %path.display(), %error, "cannot take ownership");
            }
        }
        if self.readonly_after_commit && metadata.is_file() {
            let mode = metadata.permissions().mode() & !0o222;
            if let Err(error) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
                tracing::warn!(path = %path.display(), %error, "cannot make read-only");
            }
        }
    }
}
