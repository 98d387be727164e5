//! After a file's record is durable: remove it from the drop-box, or move it
//! aside to `move_to` under its relative path.
//!
//! Invariants: this runs only for files whose bytes are recorded under their name;
//! it acts only on the very inode that was ingested, unchanged (a file put in its
//! place, or written to since, is left alone, to be looked at again); a moved file
//! never replaces one already in `move_to` (a numbered suffix is added instead).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::prepare::Opened;
use crate::config::AfterIngest;
use crate::dropbox::layout::Layout;
use crate::dropbox::tracker::Fingerprint;
use crate::fsroot::{Dir, Meta, refusal};
use crate::store::durable::{create_dirs_in, rename_in, unlink_in};

/// Most numbered suffixes tried before moving aside gives up.
const MAX_SUFFIX: u32 = 1000;

/// What became of an ingested file.
pub enum Finished {
    /// Removed or moved aside (or already gone, or replaced by another file).
    Done,
    /// Written to since it was read: left in place, as it is now.
    ChangedSince(Fingerprint),
}

/// The directories of a batch's files, each opened once, symlink-free, from the
/// drop-box directory, when the first of its files is finished. Only names just
/// checked to be an ingested inode are acted on through them.
pub struct Parents<'a> {
    root: &'a Dir,
    opened: Mutex<HashMap<PathBuf, Arc<Dir>>>,
}

impl<'a> Parents<'a> {
    pub fn new(root: &'a Dir) -> Parents<'a> {
        Parents {
            root,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The directory holding `relative`, and its name there. Failures are not
    /// remembered: the next file of the directory tries again.
    fn parent_and_name<'p>(&self, relative: &'p Path) -> io::Result<(Arc<Dir>, &'p Path)> {
        let parent = relative.parent().unwrap_or(Path::new(""));
        let name = relative
            .file_name()
            .map(Path::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let known = self.lock().get(parent).cloned();
        if let Some(dir) = known {
            return Ok((dir, name));
        }
        let dir = Arc::new(self.root.open_dir(parent)?);
        self.lock().insert(parent.to_path_buf(), dir.clone());
        Ok((dir, name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Arc<Dir>>> {
        // A panic elsewhere leaves a usable map of open directories.
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes or moves aside an ingested file, as configured. The file is reached
/// symlink-free from the drop-box directory (its directory opened once per batch,
/// by `parents`), and the name acted on there is the one just checked to be the
/// ingested inode.
pub fn after_ingest(layout: &Layout, parents: &Parents, opened: &Opened) -> io::Result<Finished> {
    let (parent, name) = match parents.parent_and_name(&opened.relative) {
        Ok(found) => found,
        // Its directory is gone, or is a link now: the file left its place.
        Err(error) if error.kind() == io::ErrorKind::NotFound || refusal(&error).is_some() => {
            return Ok(Finished::Done);
        }
        Err(error) => return Err(error),
    };
    match parent.try_stat(name)? {
        Some(meta) if meta.identity() == (opened.fingerprint.device, opened.fingerprint.inode) => {
            let now = Fingerprint::of(&meta);
            if now != opened.fingerprint {
                return Ok(Finished::ChangedSince(now));
            }
        }
        // Gone already, or replaced by a new file: nothing of ours to act on.
        _ => return Ok(Finished::Done),
    }
    match (layout.config.after_ingest, &layout.move_to) {
        (AfterIngest::Delete, _) => match unlink_in(&parent, name) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => {
                sole_name_left(opened);
                Ok(Finished::Done)
            }
        },
        (AfterIngest::Move, Some(move_to)) => {
            move_aside(&parent, name, move_to, &opened.relative).map(|()| Finished::Done)
        }
        (AfterIngest::Move, None) => Err(io::Error::other("move_to is not set")),
    }
}

/// A linked inode must keep no name outside the store once its drop-box name is
/// gone. Its conditions (one name, the node's, writable by nobody else) make a
/// new name impossible for another account; if one appeared all the same, it is
/// reported.
fn sole_name_left(opened: &Opened) {
    if !opened.sole_and_ours {
        return;
    }
    if let Ok(meta) = Meta::of(&opened.file)
        && meta.nlink > 1
    {
        tracing::error!(
            file = %opened.name,
            links = meta.nlink,
            "a stored drop-box file has another name outside the store; check who made it"
        );
    }
}

/// Renames `name` (in `from`) to `<move_to>/<relative>`, or to `.1`, `.2` ...
/// beside it if taken. The directories under `move_to` are made and opened
/// symlink-free: a link planted there cannot redirect the file.
fn move_aside(from: &Dir, name: &Path, move_to: &Path, relative: &Path) -> io::Result<()> {
    let destination_root = Dir::open_trusted(move_to)?;
    let destination = create_dirs_in(
        &destination_root,
        relative.parent().unwrap_or(Path::new("")),
    )?;
    let base = relative.file_name().unwrap_or(name.as_os_str());
    for suffix in 0..=MAX_SUFFIX {
        let mut candidate = OsString::from(base);
        if suffix > 0 {
            candidate.push(format!(".{suffix}"));
        }
        match rename_in(from, name, &destination, Path::new(&candidate)) {
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} and {MAX_SUFFIX} numbered names beside it are taken",
            PathBuf::from(move_to).join(relative).display()
        ),
    ))
}
