//! Walking a drop-box (or a directory that appeared in it) with walkdir, for the
//! files no event announced: at start-up, after an event-queue overflow, on the
//! rescan interval, and inside directories created or moved in.

use std::path::Path;
use std::time::Instant;

use super::layout::Layout;
use super::probe::writers;
use super::tracker::{Tracker, is_candidate};

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
/// and excluded paths, and tells the tracker about every file. Returns the
/// number of files found.
pub fn walk(layout: &Layout, directory: &Path, found: Found, tracker: &mut Tracker) -> usize {
    let now = Instant::now();
    let mut files = 0;
    let walker = walkdir::WalkDir::new(directory)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| {
            entry.path() == layout.root || layout.relative(entry.path()).is_some()
        });
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::debug!(%error, "drop-box walk skipped an entry");
                continue;
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !is_candidate(&metadata) {
            continue;
        }
        files += 1;
        let path = entry.path();
        match found {
            Found::Settling => tracker.scanned(path, &metadata, now),
            Found::MovedIn => tracker.found_moved_in(path, &metadata),
            Found::InNewDirectory => {
                tracker.found_in_new_directory(path, &metadata, || writers(path), now)
            }
        }
    }
    files
}
