//! Moving verified staged data into a store durably, and back (recovery, a
//! refused record).
//!
//! Invariants: what is renamed into the store is the very entry that was hashed:
//! it is opened symlink-free from the staging area, hashed from that handle, left
//! unchanged since (a file's size and times, a tree's every entry), renamed by
//! its name in the directory handle it was found in, and found in the store as
//! the same inode afterwards; anything else is moved back and refused. Clients
//! of the `local` provider write in staging, so a link there is never followed,
//! and a link planted in a store directory refuses the placement rather than
//! redirect it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::durable::{
    create_dirs_in, rename_in, sync_all_opened_in_parallel, sync_directory, sync_filesystem_of,
};
use super::{ParentDirs, Store};
use crate::fsroot::{Dir, Kind, Meta, Opened, Visit};

/// Batches of at least this many items are made durable with one sync of the
/// whole filesystem instead of one fsync per item.
const SYNCFS_MIN_ITEMS: usize = 16;

/// Staged data opened symlink-free, as it was when it was hashed.
pub struct StagedEntry {
    /// The staging directory holding it, and its name there.
    pub parent: Dir,
    pub name: PathBuf,
    /// The handle the data was hashed through.
    pub opened: Opened,
    /// A tree's fingerprint (`Dir::tree_fingerprint`) taken before it was hashed.
    pub tree: Option<[u8; 32]>,
}

impl StagedEntry {
    /// Opens the staged file or tree `relative` (beneath `staging`) without
    /// following any link; a FIFO, socket or device is refused unopened, and so
    /// is a tree that holds one, or a link.
    pub fn open(staging: &Dir, relative: &Path) -> io::Result<StagedEntry> {
        let (parent, name) = staging.parent_and_name(relative)?;
        let opened = parent.open_entry(name)?;
        let tree = match &opened {
            Opened::Dir(tree, _) => Some(tree.tree_fingerprint()?),
            Opened::File(..) => None,
        };
        Ok(StagedEntry {
            name: name.to_path_buf(),
            parent,
            opened,
            tree,
        })
    }

    /// What it was when opened.
    pub fn meta(&self) -> &Meta {
        self.opened.meta()
    }

    /// Fails unless the entry is still what was hashed: a file with the same
    /// size, modification and change time; a tree whose every entry is so.
    fn unchanged(&self) -> io::Result<()> {
        let before = self.opened.meta();
        let now = self.opened.meta_now()?;
        let same = match (&self.opened, self.tree) {
            (Opened::Dir(tree, _), Some(fingerprint)) => tree.tree_fingerprint()? == fingerprint,
            _ => (now.size, now.mtime, now.ctime) == (before.size, before.mtime, before.ctime),
        };
        if same { Ok(()) } else { Err(Changed.into_io()) }
    }
}

/// Staged data that changed, or was replaced, after it was verified.
#[derive(Debug, thiserror::Error)]
#[error("the staged data changed, or was replaced, after it was verified")]
pub struct Changed;

impl Changed {
    fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// Whether `error` says that staged data changed after it was verified.
pub fn changed(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<Changed>().is_some())
}

fn clone_result(result: &io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
    }
}

/// An item renamed into the store: the directory it went in and its name there.
struct Moved {
    parent: Arc<Dir>,
    base: PathBuf,
}

impl Store {
    /// Moves verified staged data to `<root>/<name>` durably: syncs it, creates
    /// the parent directories durably, renames it without replacing anything,
    /// and syncs the new entry's directory. `AlreadyExists` means the name is
    /// taken on disk.
    pub fn commit(&self, staged: StagedEntry, name: &str) -> io::Result<PathBuf> {
        let item = vec![(staged, name.to_string())];
        self.commit_many(item).pop().expect("one result per item")
    }

    /// Commits many verified items at once, paying for durability per batch
    /// rather than per item: the staged data of all items is made durable first
    /// (one filesystem sync for a large batch, parallel fsyncs for a small one),
    /// then each item is checked unchanged and renamed into place, then the new
    /// directory entries are made durable the same way. Each item gets its own
    /// result; an item whose entry cannot be made durable, or that is not the
    /// verified inode once in place, is moved back to staging and reported as
    /// failed.
    pub fn commit_many(&self, items: Vec<(StagedEntry, String)>) -> Vec<io::Result<PathBuf>> {
        let mut parents = match ParentDirs::of(self) {
            Ok(parents) => parents,
            Err(error) => return items.iter().map(|_| Err(clone_error(&error))).collect(),
        };
        let whole_filesystem = items.len() >= SYNCFS_MIN_ITEMS;
        let synced: Vec<io::Result<()>> = if whole_filesystem {
            let synced = sync_filesystem_of(parents.root());
            items.iter().map(|_| clone_result(&synced)).collect()
        } else {
            let opened: Vec<&Opened> = items.iter().map(|(staged, _)| &staged.opened).collect();
            sync_all_opened_in_parallel(&opened)
        };
        let mut results: Vec<io::Result<PathBuf>> = Vec::with_capacity(items.len());
        let mut moved: Vec<Option<Moved>> = Vec::with_capacity(items.len());
        for ((staged, name), synced) in items.iter().zip(synced) {
            let placed = synced
                .and_then(|()| staged.unchanged())
                .and_then(|()| self.place(staged, name, &mut parents));
            match placed {
                Ok(entry) => {
                    moved.push(Some(entry));
                    results.push(Ok(self.file_path(name)));
                }
                Err(error) => {
                    moved.push(None);
                    results.push(Err(error));
                }
            }
        }
        // Directories that gained entries, by identity, with the items in each.
        let mut touched: BTreeMap<(u64, u64), (Arc<Dir>, Vec<usize>)> = BTreeMap::new();
        for (index, entry) in moved.iter().enumerate() {
            if let Some(entry) = entry {
                let identity = entry.parent.meta().map_or((0, 0), |m| m.identity());
                touched
                    .entry(identity)
                    .or_insert_with(|| (entry.parent.clone(), Vec::new()))
                    .1
                    .push(index);
            }
        }
        let entries_synced: Vec<(Vec<usize>, io::Result<()>)> = if whole_filesystem {
            let synced = sync_filesystem_of(parents.root());
            let indexes = touched.into_values().flat_map(|(_, i)| i).collect();
            vec![(indexes, synced)]
        } else {
            touched
                .into_values()
                .map(|(directory, indexes)| (indexes, self.dir_syncs.sync_dir(&directory)))
                .collect()
        };
        for (indexes, synced) in entries_synced {
            let Err(error) = synced else { continue };
            for index in indexes {
                let (staged, name) = &items[index];
                if let Some(entry) = moved[index].take()
                    && let Err(undo) =
                        rename_in(&entry.parent, &entry.base, &staged.parent, &staged.name)
                {
                    tracing::error!(%name, %undo, "cannot move an undurable commit back to staging");
                }
                results[index] = Err(clone_error(&error));
            }
        }
        for ((staged, _), entry) in items.iter().zip(&moved) {
            if entry.is_some() {
                self.apply_commit_permissions(&staged.opened);
            }
        }
        results
    }

    /// Renames one unchanged staged item to `<root>/<name>` and checks that the
    /// name now holds the verified inode (else moves it back).
    fn place(
        &self,
        staged: &StagedEntry,
        name: &str,
        parents: &mut ParentDirs,
    ) -> io::Result<Moved> {
        let (parent, base) = parents.for_name(name)?;
        rename_in(&staged.parent, &staged.name, &parent, base)?;
        let verified = staged.meta().identity();
        let found = parent.stat(base).map(|meta| meta.identity());
        if found.as_ref().ok() != Some(&verified) {
            // Someone put another entry under the staged name between the check
            // and the rename: it goes back where it was, unrecorded.
            if let Err(undo) = rename_in(&parent, base, &staged.parent, &staged.name) {
                tracing::error!(%name, %undo, "cannot move replaced staged data back to staging");
            }
            return Err(Changed.into_io());
        }
        Ok(Moved {
            parent,
            base: base.to_path_buf(),
        })
    }

    /// Moves a committed-but-unrecorded entry back into staging, at `staged`
    /// (relative to the staging area), so that a client retrying its commit finds
    /// its bytes where it left them (used by recovery, and when a record is
    /// refused). Both sides are reached symlink-free.
    pub fn uncommit(&self, name: &str, staged: &Path) -> io::Result<()> {
        let root = self.root_dir()?;
        let (from, base) = root.parent_and_name(Path::new(name))?;
        let staging = self.staging_root()?;
        let staged_base = Path::new(staged.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a staged path has a last component",
            )
        })?);
        let to = create_dirs_in(&staging, staged.parent().unwrap_or(Path::new("")))?;
        rename_in(&from, base, &to, staged_base)?;
        sync_directory(&from)?;
        sync_directory(&to)
    }

    /// Takes ownership of, and removes write permission from, a committed file or
    /// every entry of a committed tree, as configured, through the handle it was
    /// verified by (never by a path: nothing is followed). Failures are logged:
    /// the data is committed regardless.
    fn apply_commit_permissions(&self, opened: &Opened) {
        if !(self.own_after_commit || self.readonly_after_commit) {
            return;
        }
        match opened {
            Opened::File(file, _) => self.apply_permissions(file, Kind::File),
            Opened::Dir(tree, _) => {
                self.apply_permissions(tree, Kind::Dir);
                let _ = tree.walk(&mut |entry| {
                    match entry.kind {
                        Kind::File => {
                            if let Ok((file, _)) = entry.parent.open_file(entry.name) {
                                self.apply_permissions(&file, Kind::File);
                            }
                        }
                        Kind::Dir => {
                            if let Ok(dir) = entry.parent.open_dir(entry.name) {
                                self.apply_permissions(&dir, Kind::Dir);
                            }
                        }
                        Kind::Symlink | Kind::Special => {}
                    }
                    Visit::Continue
                });
            }
        }
    }

    /// Takes ownership of, and makes read-only (a file), one open entry.
    fn apply_permissions(&self, handle: impl std::os::fd::AsFd, kind: Kind) {
        if self.own_after_commit {
            let uid = rustix::process::geteuid();
            let gid = rustix::process::getegid();
            if let Err(error) = rustix::fs::fchown(&handle, Some(uid), Some(gid)) {
                tracing::warn!(%error, "cannot take ownership of a committed entry");
            }
        }
        if self.readonly_after_commit && kind == Kind::File {
            let mode = Meta::of(&handle).map(|m| m.mode & 0o7777 & !0o222);
            let made = mode.and_then(|mode| {
                rustix::fs::fchmod(&handle, rustix::fs::Mode::from_raw_mode(mode))
                    .map_err(io::Error::from)
            });
            if let Err(error) = made {
                tracing::warn!(%error, "cannot make a committed file read-only");
            }
        }
    }
}

fn clone_error(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::config::StoreConfig;

    fn store(dir: &Path) -> Store {
        let config = StoreConfig {
            name: "t".into(),
            path: dir.join("root"),
            staging_path: None,
            ingestable: true,
            report_full_fraction: 1.0,
            enabled: true,
            group_write_after_stage: false,
            own_after_commit: false,
            readonly_after_commit: true,
        };
        let store = Store::new(1, &config, dir.join("root"), dir.join("staging"), true);
        store.prepare().unwrap();
        fs::create_dir_all(dir.join("staging/s")).unwrap();
        store
    }

    fn opened(store: &Store, relative: &str) -> StagedEntry {
        StagedEntry::open(&store.staging_root().unwrap(), Path::new(relative)).unwrap()
    }

    #[test]
    fn the_verified_entry_is_what_lands_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        fs::write(dir.path().join("staging/s/f"), b"verified").unwrap();
        let entry = opened(&store, "s/f");
        let inode = entry.meta().inode;
        let placed = store.commit(entry, "a/f").unwrap();
        assert_eq!(placed, store.file_path("a/f"));
        let meta = fs::metadata(&placed).unwrap();
        assert_eq!(meta.ino(), inode);
        assert_eq!(
            meta.permissions().mode() & 0o222,
            0,
            "read-only once committed"
        );
    }

    #[test]
    fn a_file_replaced_after_it_was_verified_is_moved_back_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let staged = dir.path().join("staging/s/f");
        fs::write(&staged, b"verified").unwrap();
        let entry = opened(&store, "s/f");
        fs::write(dir.path().join("staging/s/other"), b"swapped in").unwrap();
        fs::rename(dir.path().join("staging/s/other"), &staged).unwrap();
        let error = store.commit(entry, "f").unwrap_err();
        assert!(changed(&error), "{error}");
        assert!(!store.file_path("f").exists(), "nothing stays in the store");
        assert_eq!(fs::read(&staged).unwrap(), b"swapped in", "moved back");
    }

    #[test]
    fn a_file_written_after_it_was_verified_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let staged = dir.path().join("staging/s/f");
        fs::write(&staged, b"verified").unwrap();
        let entry = opened(&store, "s/f");
        let mut writer = fs::OpenOptions::new().append(true).open(&staged).unwrap();
        writer.write_all(b" and more").unwrap();
        drop(writer);
        let error = store.commit(entry, "f").unwrap_err();
        assert!(changed(&error), "{error}");
        assert!(!store.file_path("f").exists());
    }

    #[test]
    fn a_tree_changed_after_it_was_verified_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let tree = dir.path().join("staging/s/t");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/a"), b"a").unwrap();
        let entry = opened(&store, "s/t");
        fs::write(tree.join("sub/b"), b"added later").unwrap();
        let error = store.commit(entry, "t").unwrap_err();
        assert!(changed(&error), "{error}");
        assert!(!store.file_path("t").exists());
        assert!(tree.join("sub/b").exists(), "left in staging");
    }

    #[test]
    fn a_link_in_a_store_directory_refuses_the_placement() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, store.root.join("l")).unwrap();
        fs::write(dir.path().join("staging/s/f"), b"bytes").unwrap();
        let error = store.commit(opened(&store, "s/f"), "l/f").unwrap_err();
        assert!(crate::fsroot::refusal(&error).is_some(), "{error}");
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        assert!(dir.path().join("staging/s/f").exists());
    }
}
