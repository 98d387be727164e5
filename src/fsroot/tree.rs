//! Walking and removing whole trees beneath a [`Dir`], one directory descriptor per
//! level, never following a link (a link is reported, or removed, as itself).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::{Dir, Kind, Meta};

/// What a walk does after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Go on (into the entry, if it is a directory).
    Continue,
    /// Go on, but not into this directory.
    Skip,
    /// End the walk.
    Stop,
}

/// One entry met by a walk.
pub struct WalkEntry<'a> {
    /// The directory holding it.
    pub parent: &'a Dir,
    /// Its name in `parent`.
    pub name: &'a Path,
    /// Its path relative to where the walk started.
    pub relative: &'a Path,
    pub kind: Kind,
}

impl WalkEntry<'_> {
    /// What the entry is (`lstat`).
    pub fn meta(&self) -> io::Result<Meta> {
        self.parent.stat(self.name)
    }
}

impl Dir {
    /// Visits every entry below this directory, depth first, names sorted, a
    /// directory before what it holds. A directory that cannot be listed (gone,
    /// or replaced by a link meanwhile) ends the walk with its error.
    pub fn walk(&self, visit: &mut dyn FnMut(&WalkEntry) -> Visit) -> io::Result<()> {
        walk_in(self, Path::new(""), visit, &mut |_, e| Err(e)).map(|_| ())
    }

    /// Like [`Dir::walk`], but a directory below this one that cannot be listed is
    /// passed to `skipped` and the walk goes on without it.
    pub fn walk_skipping(
        &self,
        visit: &mut dyn FnMut(&WalkEntry) -> Visit,
        skipped: &mut dyn FnMut(&Path, io::Error),
    ) -> io::Result<()> {
        let mut skip = |path: &Path, error: io::Error| {
            skipped(path, error);
            Ok(())
        };
        walk_in(self, Path::new(""), visit, &mut skip).map(|_| ())
    }

    /// Removes `relative` (empty: everything in this directory), a file or a
    /// whole tree, never following a link. Directories the node made read-only are
    /// made writable first. A missing name is not an error; returns whether
    /// anything was there.
    pub fn remove_tree(&self, relative: &Path) -> io::Result<bool> {
        let meta = match self.try_stat(relative)? {
            Some(meta) => meta,
            None => return Ok(false),
        };
        if meta.kind != Kind::Dir {
            return match self.unlink(relative) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                other => other.map(|()| true),
            };
        }
        let dir = self.open_dir(relative)?;
        empty_dir(&dir, meta)?;
        if relative.as_os_str().is_empty() {
            return Ok(true);
        }
        match self.remove_dir(relative) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            other => other.map(|()| true),
        }
    }
}

impl Dir {
    /// A digest of what this tree is: every entry's path, kind, inode, size,
    /// modification and change time (the change time cannot be set back by a
    /// user, so a write or a replacement anywhere changes the digest). This
    /// directory's own times are left out: renaming it changes them.
    pub fn tree_fingerprint(&self) -> io::Result<[u8; 32]> {
        let mut digest = blake3::Hasher::new();
        let mut failure = None;
        self.walk(&mut |entry| match entry.meta() {
            Ok(meta) => {
                digest.update(entry.relative.as_os_str().as_encoded_bytes());
                digest.update(&[0, meta.kind as u8]);
                for value in [meta.device, meta.inode, meta.size] {
                    digest.update(&value.to_le_bytes());
                }
                for (seconds, nanos) in [meta.mtime, meta.ctime] {
                    digest.update(&seconds.to_le_bytes());
                    digest.update(&nanos.to_le_bytes());
                }
                Visit::Continue
            }
            Err(error) => {
                failure = Some(error);
                Visit::Stop
            }
        })?;
        match failure {
            Some(error) => Err(error),
            None => Ok(*digest.finalize().as_bytes()),
        }
    }
}

/// What a walk does with a directory it cannot list: fail, or go on.
type OnError<'a> = dyn FnMut(&Path, io::Error) -> io::Result<()> + 'a;

/// Walks `dir` (found at `prefix` from the start); false when told to stop.
fn walk_in(
    dir: &Dir,
    prefix: &Path,
    visit: &mut dyn FnMut(&WalkEntry) -> Visit,
    on_error: &mut OnError,
) -> io::Result<bool> {
    let entries = match dir.entries() {
        Ok(entries) => entries,
        Err(error) => {
            on_error(prefix, error)?;
            return Ok(true);
        }
    };
    for (name, kind) in entries {
        let relative: PathBuf = prefix.join(&name);
        let entry = WalkEntry {
            parent: dir,
            name: Path::new(&name),
            relative: &relative,
            kind,
        };
        match visit(&entry) {
            Visit::Stop => return Ok(false),
            Visit::Skip => continue,
            Visit::Continue => {}
        }
        if kind == Kind::Dir {
            let child = match dir.open_dir(Path::new(&name)) {
                Ok(child) => child,
                Err(error) => {
                    on_error(&relative, error)?;
                    continue;
                }
            };
            if !walk_in(&child, &relative, visit, on_error)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Removes everything inside `dir` (whose metadata is `meta`).
fn empty_dir(dir: &Dir, meta: Meta) -> io::Result<()> {
    if meta.mode & 0o200 == 0 {
        // A read-only directory of ours (`readonly_after_commit`) cannot lose
        // entries until it is writable again; one of someone else's stays as it is.
        let _ = rustix::fs::fchmod(
            dir,
            rustix::fs::Mode::from_raw_mode((meta.mode | 0o700) & 0o7777),
        );
    }
    let entries: Vec<(OsString, Kind)> = dir.entries()?;
    for (name, kind) in entries {
        let name = Path::new(&name);
        let result = if kind == Kind::Dir {
            let child = dir.open_dir(name)?;
            let child_meta = child.meta()?;
            empty_dir(&child, child_meta).and_then(|()| dir.remove_dir(name))
        } else {
            dir.unlink(name)
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}
