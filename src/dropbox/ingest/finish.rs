//! After a file's record is durable: remove it from the drop-box, or move it
//! aside to `move_to` under its relative path.
//!
//! Invariants: this runs only for files whose bytes are recorded under their name;
//! it acts only on the very inode that was ingested, unchanged (a file put in its
//! place, or written to since, is left alone, to be looked at again); a moved file
//! never replaces one already in `move_to` (a numbered suffix is added instead).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::prepare::Opened;
use crate::config::AfterIngest;
use crate::dropbox::layout::Layout;
use crate::dropbox::tracker::Fingerprint;
use crate::store::durable::{remove_file, rename_no_replace};

/// Most numbered suffixes tried before moving aside gives up.
const MAX_SUFFIX: u32 = 1000;

/// What became of an ingested file.
pub enum Finished {
    /// Removed or moved aside (or already gone, or replaced by another file).
    Done,
    /// Written to since it was read: left in place, as it is now.
    ChangedSince(Fingerprint),
}

/// Removes or moves aside an ingested file, as configured.
pub fn after_ingest(layout: &Layout, opened: &Opened) -> io::Result<Finished> {
    match fs::symlink_metadata(&opened.path) {
        Ok(metadata)
            if metadata.dev() == opened.fingerprint.device
                && metadata.ino() == opened.fingerprint.inode =>
        {
            let now = Fingerprint::of(&metadata);
            if now != opened.fingerprint {
                return Ok(Finished::ChangedSince(now));
            }
        }
        // Gone already, or replaced by a new file: nothing of ours to act on.
        Ok(_) => return Ok(Finished::Done),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Finished::Done),
        Err(error) => return Err(error),
    }
    match (layout.config.after_ingest, &layout.move_to) {
        (AfterIngest::Delete, _) => match remove_file(&opened.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(Finished::Done),
        },
        (AfterIngest::Move, Some(move_to)) => {
            move_aside(&opened.path, &move_to.join(&opened.relative)).map(|()| Finished::Done)
        }
        (AfterIngest::Move, None) => Err(io::Error::other("move_to is not set")),
    }
}

/// Renames `from` to `to`, or to `to.1`, `to.2` ... if taken.
fn move_aside(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    for suffix in 0..=MAX_SUFFIX {
        let candidate = if suffix == 0 {
            to.to_path_buf()
        } else {
            let mut name = to.as_os_str().to_owned();
            name.push(format!(".{suffix}"));
            PathBuf::from(name)
        };
        match rename_no_replace(from, &candidate) {
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} and {MAX_SUFFIX} numbered names beside it are taken",
            to.display()
        ),
    ))
}
