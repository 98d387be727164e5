//! A store's directories as handles: its root and its staging area (configured,
//! opened as the operator wrote them), and the directories below the root that a
//! batch makes sure of (opened symlink-free, durably created if missing).
//!
//! Invariant: nothing below a store's root or staging area is reached by a path
//! (see `crate::fsroot`); a store directory replaced by a link refuses what would
//! go through it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Store;
use super::durable::{create_dirs_in, take_back_in};
use crate::fsroot::Dir;

impl Store {
    /// The store's root directory.
    pub fn root_dir(&self) -> io::Result<Dir> {
        Dir::open_trusted(&self.root)
    }

    /// The store's staging area.
    pub fn staging_root(&self) -> io::Result<Dir> {
        Dir::open_trusted(&self.staging)
    }

    /// Removes `target` (a path under the root, as an intent recorded it) if it
    /// is still the inode `device`/`inode`, and syncs its directory; reached
    /// from the root symlink-free. Returns whether something was removed; a
    /// target outside the root is never touched.
    pub fn take_back(&self, target: &Path, device: u64, inode: u64) -> io::Result<bool> {
        match self.relative_path(target) {
            Some(relative) => take_back_in(&self.root_dir()?, relative, device, inode),
            None => Ok(false),
        }
    }

    /// `name` relative to the root, if `path` is `<root>/<name>` (a recorded
    /// instance path).
    pub fn relative_path<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        path.strip_prefix(&self.root)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
    }
}

/// The parent directories of a batch's files in one store, each created durably
/// (if missing) and opened once, then shared by the files that go in it.
pub struct ParentDirs {
    root: Dir,
    opened: HashMap<PathBuf, Arc<Dir>>,
}

impl ParentDirs {
    /// For files going to `store`.
    pub fn of(store: &Store) -> io::Result<ParentDirs> {
        Ok(ParentDirs {
            root: store.root_dir()?,
            opened: HashMap::new(),
        })
    }

    /// The store root.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The directory `<root>/<name>` goes in, and the name's last component.
    pub fn for_name<'a>(&mut self, name: &'a str) -> io::Result<(Arc<Dir>, &'a Path)> {
        let name = Path::new(name);
        let parent = name.parent().unwrap_or(Path::new(""));
        let base = Path::new(name.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a file name has a last component",
            )
        })?);
        if let Some(dir) = self.opened.get(parent) {
            return Ok((dir.clone(), base));
        }
        let dir = Arc::new(create_dirs_in(&self.root, parent)?);
        self.opened.insert(parent.to_path_buf(), dir.clone());
        Ok((dir, base))
    }
}
