//! Walking a drop-box (or a directory that appeared in it), for the
//! files no event announced: at start-up, after an event-queue overflow, on the
//! rescan interval, and inside directories created or moved in.

use std::path::Path;
use std::time::Instant;

use super::layout::Layout;
use super::probe::writers;
use super::tracker::{Tracker, is_candidate};
use crate::fsroot::{Dir, Kind, Visit};

/// How files found by a walk are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Complete only once settled (size and mtime unchanged for the settle time).
    Settling,
    /// Complete now: the directory holding them was moved in whole.
    MovedIn,
    /// In a directory that appeared while watched: complete once nobody has them
    /// open for writing (their events may have been missed).
    InNewDirectory,
}

/// Walks `directory` (the drop-box or a directory inside it), skipping ignored
/// and excluded paths, and tells the tracker about every file (anything but a
/// directory: links and special files are reported, never followed). The walk
/// goes from the drop-box directory symlink-free: a directory replaced by a link
/// is seen as the link. Returns the number of files found.
pub fn walk(layout: &Layout, directory: &Path, found: Found, tracker: &mut Tracker) -> usize {
    let now = Instant::now();
    let Ok(root) = Dir::open_trusted(&layout.root) else {
        return 0;
    };
    let Some(start) = directory.strip_prefix(&layout.root).ok() else {
        return 0;
    };
    if !start.as_os_str().is_empty() && layout.relative(directory).is_none() {
        return 0;
    }
    let top = match root.open_dir(start) {
        Ok(top) => top,
        Err(error) => {
            tracing::debug!(%error, "drop-box walk cannot open a directory");
            return 0;
        }
    };
    let mut files = 0;
    let mut skipped = |relative: &Path, error: std::io::Error| {
        tracing::debug!(directory = %directory.join(relative).display(), %error, "drop-box walk skipped a directory");
    };
    let walked = top.walk_skipping(
        &mut |entry| {
            let path = directory.join(entry.relative);
            if layout.relative(&path).is_none() {
                return Visit::Skip;
            }
            if entry.kind == Kind::Dir {
                return Visit::Continue;
            }
            // Events decide for files of a new directory they told of already.
            if found == Found::InNewDirectory && tracker.knows(&path) {
                files += 1;
                return Visit::Continue;
            }
            let Ok(metadata) = entry.meta() else {
                return Visit::Continue;
            };
            if !is_candidate(&metadata) {
                return Visit::Continue;
            }
            files += 1;
            match found {
                Found::Settling => tracker.scanned(&path, &metadata, now),
                Found::MovedIn => tracker.found_moved_in(&path, &metadata),
                Found::InNewDirectory => tracker.found_in_new_directory(
                    &path,
                    &metadata,
                    || writers(entry.parent, entry.name),
                    now,
                ),
            }
            Visit::Continue
        },
        &mut skipped,
    );
    if let Err(error) = walked {
        tracing::debug!(%error, "drop-box walk skipped a directory");
    }
    files
}
