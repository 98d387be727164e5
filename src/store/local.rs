//! A local POSIX store: a root directory holding each file at `<root>/<name>`, and a
//! staging directory on the same filesystem where uploads land before commit.
//!
//! Invariant: a committed path is only ever created by an atomic no-replace rename
//! from staging, after the staged bytes and the new directory entries are synced
//! (`commit.rs`). The root and staging paths are the operator's and are used as
//! configured; everything below them is reached through `crate::fsroot`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::durable::{make_dir_in, remove_in};
use super::shared_sync::SharedDirSyncs;
use super::staging_pool::{GivenBack, StagingPool};
use crate::config::StoreConfig;

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
    pub(super) dir_syncs: SharedDirSyncs,
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
        let staging = self.staging_root()?;
        make_dir_in(&staging, Path::new(&name), 0o777)?;
        if self.group_write_after_stage {
            staging.set_dir_mode(Path::new(&name), 0o2775)?;
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

    /// Forgets that a staging directory was lent (it is being removed).
    pub fn forget_staging(&self, staging_name: &str) {
        self.staging_pool.forget(staging_name);
    }

    /// Removes a staging directory and everything in it.
    pub fn remove_staging(&self, staging_name: &str) -> io::Result<()> {
        self.staging_pool.forget(staging_name);
        match self.staging_dir(staging_name) {
            Some(_) => remove_in(&self.staging_root()?, Path::new(staging_name)),
            None => Ok(()),
        }
    }

    /// Names of every staging directory present.
    pub fn staging_names(&self) -> io::Result<Vec<String>> {
        let entries = self.staging_root()?.entries()?;
        Ok(entries
            .into_iter()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect())
    }
}
