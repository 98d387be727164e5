//! Putting a batch's bytes in a store: the very inode linked in (same
//! filesystem), or the copy made in an unnamed file given its name; both without
//! ever replacing an existing file, and durable before anything is recorded.
//!
//! Invariant: this runs only after the batch's intent is durable, so whatever it
//! places can be found and taken back after a crash; a placed path is only ever
//! taken back while it is still the inode placed there.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::Verdict;
use super::parallel::parallel_map_by_directory;
use super::prepare::Opened;
use crate::checksum::Digests;
use crate::dropbox::problems::Problem;
use crate::dropbox::tracker::Fingerprint;
use crate::fsroot::{Dir, Meta};
use crate::store::durable::{link_in, sync_directory, sync_file, sync_filesystem_of, take_back_in};
use crate::store::{Store, UnnamedFile};

/// Placed items at or above this count are made durable with one sync of the
/// whole filesystem instead of one per file and directory.
const SYNCFS_MIN_ITEMS: usize = 16;

/// How the bytes get into the store.
pub enum How {
    /// Link the opened inode itself.
    Link,
    /// Name this copy.
    Copy(UnnamedFile),
    /// The copy is named.
    Copied,
}

/// A file on its way into a store.
pub struct Placement {
    pub opened: Opened,
    pub store: Arc<Store>,
    pub digests: Digests,
    pub how: How,
    pub target: PathBuf,
    /// The directory of `target` (opened symlink-free from the store root) and
    /// the name there.
    pub parent: Arc<Dir>,
    pub base: PathBuf,
    /// Identity of what is (or will be) at `target`.
    pub target_device: u64,
    pub target_inode: u64,
}

/// Places every item in its store durably. Items that could not be placed, or
/// that changed while being read, come back as verdicts.
pub fn place_all(items: Vec<Placement>) -> Vec<Result<Placement, (PathBuf, Verdict)>> {
    let (links, copies): (Vec<Placement>, Vec<Placement>) =
        items.into_iter().partition(|p| matches!(p.how, How::Link));
    let mut results = place_links(links);
    results.extend(place_copies(copies));
    results
        .into_iter()
        .map(|result| result.and_then(still_unchanged))
        .collect()
}

/// Links each opened inode at its target (its directory exists), then makes the
/// new entries (and the bytes, which may never have been synced) durable.
fn place_links(items: Vec<Placement>) -> Vec<Result<Placement, (PathBuf, Verdict)>> {
    let directory = |item: &Placement| item.target.parent().map(|p| p.to_path_buf());
    let results = parallel_map_by_directory(items, directory, |item| {
        match link_in(&item.opened.file, &item.parent, &item.base) {
            Ok(()) => {
                seal(&item);
                Ok(item)
            }
            Err(error) => {
                let verdict = placement_failure(&item, error);
                Err((item.opened.path, verdict))
            }
        }
    });
    let placed: Vec<&Placement> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    if let Err(error) = make_durable(&placed) {
        return results
            .into_iter()
            .map(|result| {
                let item = result?;
                take_back_quietly(&item);
                let problem = Problem::Placement {
                    error: format!("cannot sync the store: {error}"),
                };
                let fingerprint = item.opened.fingerprint;
                Err((item.opened.path, Verdict::Failed(problem, fingerprint)))
            })
            .collect();
    }
    results
}

/// Applies the store's `own_after_commit` and `readonly_after_commit` to a linked
/// inode, through its descriptor. Failures are logged: the bytes are placed
/// regardless.
fn seal(item: &Placement) {
    let file = &item.opened.file;
    if item.store.own_after_commit {
        let owner = (rustix::process::geteuid(), rustix::process::getegid());
        if let Err(error) = rustix::fs::fchown(file, Some(owner.0), Some(owner.1)) {
            tracing::warn!(path = %item.target.display(), %error, "cannot take ownership");
        }
    }
    if item.store.readonly_after_commit {
        let mode = rustix::fs::Mode::from_raw_mode(item.opened.mode & 0o7555);
        if let Err(error) = rustix::fs::fchmod(file, mode) {
            tracing::warn!(path = %item.target.display(), %error, "cannot make read-only");
        }
    }
}

/// Names each copy at its target (the store syncs them as a batch).
fn place_copies(items: Vec<Placement>) -> Vec<Result<Placement, (PathBuf, Verdict)>> {
    let mut by_store: Vec<(Arc<Store>, Vec<Placement>)> = Vec::new();
    for item in items {
        match by_store.iter_mut().find(|(s, _)| s.id == item.store.id) {
            Some((_, group)) => group.push(item),
            None => by_store.push((item.store.clone(), vec![item])),
        }
    }
    let mut results = Vec::new();
    for (store, group) in by_store {
        let mut files = Vec::with_capacity(group.len());
        let mut rest = Vec::with_capacity(group.len());
        for mut item in group {
            let How::Copy(file) = std::mem::replace(&mut item.how, How::Copied) else {
                unreachable!("only copies are named");
            };
            files.push(file);
            rest.push(item);
        }
        for (item, named) in rest.into_iter().zip(store.name_all(files)) {
            match named {
                Ok(_) => results.push(Ok(item)),
                Err(error) => {
                    let verdict = placement_failure(&item, error);
                    results.push(Err((item.opened.path, verdict)));
                }
            }
        }
    }
    results
}

fn placement_failure(item: &Placement, error: io::Error) -> Verdict {
    let problem = if error.kind() == io::ErrorKind::AlreadyExists {
        Problem::NameTaken {
            name: item.opened.name.clone(),
        }
    } else {
        Problem::Placement {
            error: error.to_string(),
        }
    };
    Verdict::Failed(problem, item.opened.fingerprint)
}

/// Syncs the linked inodes and their new entries.
fn make_durable(placed: &[&Placement]) -> io::Result<()> {
    let Some(first) = placed.first() else {
        return Ok(());
    };
    if placed.len() >= SYNCFS_MIN_ITEMS {
        // One store filesystem per batch of links: links never cross filesystems.
        return sync_filesystem_of(&first.parent);
    }
    let mut directories: Vec<&Arc<Dir>> = placed.iter().map(|p| &p.parent).collect();
    directories.sort_by_key(|d| Arc::as_ptr(d));
    directories.dedup_by_key(|d| Arc::as_ptr(d));
    for item in placed {
        sync_file(&item.opened.file)?;
    }
    directories.into_iter().try_for_each(|d| sync_directory(d))
}

/// Checks, after the bytes are durable, that nobody wrote to the file while it was
/// read and placed; if somebody did, the placement is taken back.
fn still_unchanged(item: Placement) -> Result<Placement, (PathBuf, Verdict)> {
    let now = Meta::of(&item.opened.file).map(|m| Fingerprint::of(&m));
    match now {
        Ok(fingerprint) if fingerprint == item.opened.fingerprint => Ok(item),
        other => {
            take_back_quietly(&item);
            Err((item.opened.path, Verdict::NotReady(other.ok())))
        }
    }
}

/// Takes a placement back, logging a failure (recovery retries at start-up).
fn take_back_quietly(item: &Placement) {
    if let Err(error) = take_back_in(
        &item.parent,
        &item.base,
        item.target_device,
        item.target_inode,
    ) {
        tracing::error!(target = %item.target.display(), %error, "cannot take back a drop-box placement");
    }
}
