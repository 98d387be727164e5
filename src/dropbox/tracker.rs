//! Which drop-box files are complete, from the events seen and the scans made.
//!
//! A file is complete (ready to ingest) when
//! - it was closed after writing, or moved in, and nobody has written to it since
//!   and nobody we know of still has it open; or
//! - no event says so (it was found by a scan, or created without being written,
//!   as by `ln`), nobody is known to be writing it, and its size and mtime stayed
//!   the same for the settle time, measured from when we first saw them.
//!
//! Invariants: a file is in the ready queue at most once; a file whose ingest
//! failed is not queued again until it changes or a rescan after its back-off
//! (1, 2, 4 ... 64 rescans); after an event-queue overflow nothing learnt from
//! events is trusted, except that queued files stay queued (their fingerprint is
//! checked again when they are ingested).

use std::collections::{HashMap, VecDeque};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most rescans a failed file waits before it is tried again.
const MAX_BACKOFF_RESCANS: u64 = 64;

/// What identifies one version of a file: a write changes the size or the mtime,
/// a replacement changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    pub device: u64,
    pub inode: u64,
}

impl Fingerprint {
    pub fn of(metadata: &Metadata) -> Fingerprint {
        Fingerprint {
            size: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }
}

/// A complete file, as it was when it was found complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyFile {
    pub path: PathBuf,
    pub fingerprint: Fingerprint,
}

/// What is known about one file.
#[derive(Debug, Default)]
struct Entry {
    /// Opens seen minus closes seen (floored at zero).
    opens: u32,
    /// Written since it was last closed after writing.
    written: bool,
    /// Closed after writing, or moved in, since the last write.
    announced: bool,
    /// The fingerprint last seen, and since when it has not changed.
    seen: Option<(Fingerprint, Instant)>,
    /// In the ready queue.
    queued: bool,
    failure: Option<Failure>,
}

/// A failed ingest, waiting for a change or its back-off.
#[derive(Debug)]
struct Failure {
    fingerprint: Fingerprint,
    /// The rescan from which it is tried again.
    retry_at_rescan: u64,
}

/// The completeness state of every file of one drop-box.
#[derive(Debug)]
pub struct Tracker {
    entries: HashMap<PathBuf, Entry>,
    ready: VecDeque<ReadyFile>,
    settle: Duration,
    /// Rescans started so far.
    rescans: u64,
    /// Consecutive failures per path, for the back-off; forgotten on success.
    failures: HashMap<PathBuf, u32>,
}

impl Tracker {
    pub fn new(settle: Duration) -> Tracker {
        Tracker {
            entries: HashMap::new(),
            ready: VecDeque::new(),
            settle,
            rescans: 0,
            failures: HashMap::new(),
        }
    }

    /// Files waiting to be ingested.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Files known (complete or not).
    pub fn known_len(&self) -> usize {
        self.entries.len()
    }

    /// Someone opened a known file.
    pub fn opened(&mut self, path: &Path) {
        if let Some(entry) = self.entries.get_mut(path) {
            entry.opens += 1;
        }
    }

    /// Someone wrote to the file.
    pub fn written(&mut self, path: &Path) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.written = true;
        entry.announced = false;
    }

    /// A file appeared without being written yet (created, or linked in).
    pub fn created(&mut self, path: &Path) {
        self.entries.entry(path.to_path_buf()).or_default();
    }

    /// Someone closed the file; `wrote` if they had it open for writing.
    pub fn closed(&mut self, path: &Path, wrote: bool) {
        if !wrote {
            if let Some(entry) = self.entries.get_mut(path) {
                entry.opens = entry.opens.saturating_sub(1);
                self.queue_if_announced(path);
            }
            return;
        }
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.opens = entry.opens.saturating_sub(1);
        entry.written = false;
        entry.announced = true;
        // New content: whatever failed before is tried again.
        entry.failure = None;
        self.queue_if_announced(path);
    }

    /// A file was moved in (complete by definition).
    pub fn moved_in(&mut self, path: &Path) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.written = false;
        entry.announced = true;
        entry.failure = None;
        self.queue_if_announced(path);
    }

    /// A path went away (removed or moved out). A directory's files are forgotten
    /// when `directory` is set; otherwise they are found gone later.
    pub fn removed(&mut self, path: &Path, directory: bool) {
        self.entries.remove(path);
        self.failures.remove(path);
        if directory {
            self.entries.retain(|p, _| !p.starts_with(path));
        }
    }

    /// A rescan starts: failed files whose back-off is over may be retried.
    pub fn rescan_started(&mut self) {
        self.rescans += 1;
    }

    /// Events were lost: forget everything learnt from them.
    pub fn events_lost(&mut self) {
        for entry in self.entries.values_mut() {
            entry.opens = 0;
            entry.written = false;
            if !entry.queued {
                entry.announced = false;
            }
        }
    }

    /// A scan found the regular file `path` as `metadata` describes it.
    pub fn scanned(&mut self, path: &Path, metadata: &Metadata, now: Instant) {
        let fingerprint = Fingerprint::of(metadata);
        let rescans = self.rescans;
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        if let Some(failure) = &entry.failure {
            if failure.fingerprint != fingerprint {
                entry.failure = None;
                entry.seen = Some((fingerprint, now));
            } else if rescans >= failure.retry_at_rescan {
                entry.failure = None;
                entry.seen = Some((fingerprint, now));
                // It was complete when it failed, and has not changed since.
                entry.announced = true;
                self.queue_if_announced(path);
            }
            return;
        }
        if entry.seen.is_none_or(|(seen, _)| seen != fingerprint) {
            entry.seen = Some((fingerprint, now));
        }
    }

    /// Queues the files that settled: nobody writing, same size and mtime for the
    /// settle time. Forgets files that are gone. Costs one stat per waiting file.
    pub fn settle(&mut self, now: Instant) {
        let mut gone = Vec::new();
        let mut settled = Vec::new();
        for (path, entry) in &mut self.entries {
            if entry.queued || entry.failure.is_some() || entry.written || entry.opens > 0 {
                continue;
            }
            let metadata = match std::fs::symlink_metadata(path) {
                Ok(metadata) if is_candidate(&metadata) => metadata,
                _ => {
                    gone.push(path.clone());
                    continue;
                }
            };
            let fingerprint = Fingerprint::of(&metadata);
            match entry.seen {
                Some((seen, since)) if seen == fingerprint => {
                    if entry.announced || now.duration_since(since) >= self.settle {
                        settled.push(ReadyFile {
                            path: path.clone(),
                            fingerprint,
                        });
                    }
                }
                _ => entry.seen = Some((fingerprint, now)),
            }
        }
        for path in gone {
            self.entries.remove(&path);
        }
        for file in settled {
            if let Some(entry) = self.entries.get_mut(&file.path) {
                entry.queued = true;
                self.ready.push_back(file);
            }
        }
    }

    /// Takes up to `max` ready files, skipping any that someone started writing or
    /// opened again since they were queued.
    pub fn take_ready(&mut self, max: usize) -> Vec<ReadyFile> {
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some(file) = self.ready.pop_front() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&file.path) else {
                continue;
            };
            entry.queued = false;
            if entry.written || entry.opens > 0 || entry.failure.is_some() {
                continue;
            }
            taken.push(file);
        }
        taken
    }

    /// The file was ingested (or is gone): forget it.
    pub fn done(&mut self, path: &Path) {
        self.entries.remove(path);
        self.failures.remove(path);
    }

    /// The file changed since it was found complete: wait until it is complete
    /// again, as `fingerprint` (its current state, if known) starts the settle time.
    pub fn not_ready(&mut self, path: &Path, fingerprint: Option<Fingerprint>, now: Instant) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.queued = false;
        entry.announced = false;
        entry.seen = fingerprint.map(|f| (f, now));
    }

    /// Ingesting the file failed: it is tried again when it changes, or at a
    /// rescan after its back-off.
    pub fn failed(&mut self, path: &Path, fingerprint: Fingerprint) {
        let count = self.failures.entry(path.to_path_buf()).or_insert(0);
        *count += 1;
        let backoff = (1u64 << (*count - 1).min(6)).min(MAX_BACKOFF_RESCANS);
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.queued = false;
        entry.announced = false;
        entry.failure = Some(Failure {
            fingerprint,
            retry_at_rescan: self.rescans + backoff,
        });
    }

    /// Queues an announced file nobody has open, as it is now.
    fn queue_if_announced(&mut self, path: &Path) {
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        if entry.queued
            || !entry.announced
            || entry.written
            || entry.opens > 0
            || entry.failure.is_some()
        {
            return;
        }
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if is_candidate(&metadata) => {
                let fingerprint = Fingerprint::of(&metadata);
                entry.queued = true;
                entry.seen = Some((fingerprint, Instant::now()));
                self.ready.push_back(ReadyFile {
                    path: path.to_path_buf(),
                    fingerprint,
                });
            }
            // A directory (the caller walks it), or a file already gone.
            _ => {
                self.entries.remove(path);
            }
        }
    }
}

/// Regular files are ingested; symbolic links are queued too, so that refusing
/// them is reported.
pub fn is_candidate(metadata: &Metadata) -> bool {
    metadata.is_file() || metadata.file_type().is_symlink()
}
