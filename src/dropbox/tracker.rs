//! Which drop-box files are complete, from the events seen and the scans made.
//!
//! A file is complete (ready to ingest) when
//! - it was closed after writing, or moved in, and nobody has written to it since;
//!   or
//! - no event says so (it was found by a scan, or created without being opened,
//!   as by `ln`), nobody is known to be writing it, and its size and mtime stayed
//!   the same for the settle time, measured from when we first saw them.
//!
//! A file created and opened while watched is waited for until it is closed after
//! writing, however long its writer pauses (the kernel reports that close even if
//! the writer dies), or, as the opener may have been a reader whose close is not
//! reported, until it stayed unchanged for an hour.
//!
//! Invariants: a file is in the ready queue at most once; a file whose ingest
//! failed is not queued again until it changes or a rescan after its back-off
//! (1, 2, 4 ... 64 rescans); after an event-queue overflow nothing learnt from
//! events is trusted, except that queued files stay queued (their fingerprint is
//! checked again when they are ingested).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::probe::{Writers, writers};
use crate::fsroot::{Dir, Kind, Meta};

/// A new file opened but neither written nor closed after writing is taken as
/// abandoned (its opener was a reader, whose close is not reported) once it stayed
/// unchanged this long; then the settle rule applies.
const ABANDONED_OPEN: Duration = Duration::from_secs(3600);
/// Most rescans a failed file waits before it is tried again.
const MAX_BACKOFF_RESCANS: u64 = 64;
/// Most directories kept open for looking at files (see `Tracker::dirs`).
const MAX_OPEN_DIRS: usize = 256;

/// What identifies one version of a file: a write changes the size or the mtime,
/// a replacement changes the inode (or what the name is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    pub device: u64,
    pub inode: u64,
    pub kind: Kind,
}

impl Fingerprint {
    pub fn of(meta: &Meta) -> Fingerprint {
        Fingerprint {
            size: meta.size,
            mtime: meta.mtime,
            device: meta.device,
            inode: meta.inode,
            kind: meta.kind,
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
    /// Created while watched, and neither closed after writing nor examined by an
    /// ingest since.
    fresh: bool,
    /// Opened while fresh: a writer may hold it until its close-after-write.
    awaiting_close: bool,
    /// Written since it was last closed after writing.
    written: bool,
    /// Closed after writing, or moved in, since the last write.
    announced: bool,
    /// The fingerprint last seen, and since when it has not changed.
    seen: Option<(Fingerprint, Instant)>,
    /// In the ready queue.
    queued: bool,
    /// Taken by a batch that has not ended yet.
    in_flight: bool,
    /// Its events were missed (made before its new directory was watched): it is
    /// complete once nobody has it open for writing.
    probing: bool,
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
    /// The drop-box directory, through which every file is looked at (opened
    /// again at each rescan, in case it was made anew).
    root_path: PathBuf,
    root: Option<Dir>,
    /// Directories below the drop-box directory, opened symlink-free from it, by
    /// their relative path: looking at many files of one directory opens it once.
    /// Only names are looked at through them (never opened); they are forgotten
    /// at every round of the runner and whenever a directory appears, moves or
    /// goes, and a name not found through one is looked for again through a
    /// fresh one.
    dirs: HashMap<PathBuf, Arc<Dir>>,
    entries: HashMap<PathBuf, Entry>,
    ready: VecDeque<ReadyFile>,
    settle: Duration,
    /// Rescans started so far.
    rescans: u64,
    /// Consecutive failures per path, for the back-off; forgotten on success.
    failures: HashMap<PathBuf, u32>,
}

impl Tracker {
    /// Tracks the files of the drop-box directory `root`.
    pub fn new(settle: Duration, root: &Path) -> Tracker {
        Tracker {
            root_path: root.to_path_buf(),
            root: Dir::open_trusted(root).ok(),
            dirs: HashMap::new(),
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

    /// Whether `path` is known (from an event or a scan).
    pub fn knows(&self, path: &Path) -> bool {
        self.entries.contains_key(path)
    }

    /// Someone opened a known file.
    pub fn opened(&mut self, path: &Path) {
        if let Some(entry) = self.entries.get_mut(path)
            && entry.fresh
        {
            entry.awaiting_close = true;
        }
    }

    /// Someone wrote to the file.
    pub fn written(&mut self, path: &Path) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.written = true;
        entry.announced = false;
    }

    /// A file appeared (created, or linked in).
    pub fn created(&mut self, path: &Path) {
        self.entries.entry(path.to_path_buf()).or_default().fresh = true;
    }

    /// Someone who had the file open for writing closed it.
    pub fn closed_after_writing(&mut self, path: &Path) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.fresh = false;
        entry.awaiting_close = false;
        entry.written = false;
        entry.announced = true;
        // New content: whatever failed before is tried again.
        entry.failure = None;
        self.queue_if_announced(path);
    }

    /// A file was moved in (complete by definition).
    pub fn moved_in(&mut self, path: &Path) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.fresh = false;
        entry.awaiting_close = false;
        entry.written = false;
        entry.announced = true;
        entry.failure = None;
        self.queue_if_announced(path);
    }

    /// A walk of a directory that was moved in whole found this file: complete.
    pub fn found_moved_in(&mut self, path: &Path, metadata: &Meta) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.written = false;
        entry.announced = true;
        entry.failure = None;
        self.queue_announced(path, Fingerprint::of(metadata));
    }

    /// A walk of a directory that appeared while watched found this file. Files
    /// already known from events are left to them; the others were made before
    /// the directory's watch, so `writers` (nobody has it open for writing, some
    /// have, or that cannot be told) decides instead of their events.
    pub fn found_in_new_directory(
        &mut self,
        path: &Path,
        metadata: &Meta,
        writers: impl FnOnce() -> Writers,
        now: Instant,
    ) {
        if self.entries.contains_key(path) {
            return;
        }
        match writers() {
            Writers::None => self.found_moved_in(path, metadata),
            Writers::Some => {
                let entry = self.entries.entry(path.to_path_buf()).or_default();
                entry.probing = true;
                entry.seen = Some((Fingerprint::of(metadata), now));
            }
            Writers::Unknown => self.scanned(path, metadata, now),
        }
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
        self.root = Dir::open_trusted(&self.root_path).ok();
        self.dirs.clear();
    }

    /// A new round of the runner: directories are opened afresh.
    pub fn new_round(&mut self) {
        self.dirs.clear();
    }

    /// A directory appeared, moved or went: directories are opened afresh.
    pub fn directories_changed(&mut self) {
        self.dirs.clear();
    }

    /// What `path` (in the drop-box) is now, looked at symlink-free from the
    /// drop-box directory: `None` if it is gone, or reached through a link.
    fn look(&mut self, path: &Path) -> Option<Meta> {
        let relative = path.strip_prefix(&self.root_path).ok()?;
        let root = self.root.as_ref()?;
        let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
            return root.stat(relative).ok();
        };
        if parent.as_os_str().is_empty() {
            return root.stat(relative).ok();
        }
        let name = Path::new(name);
        if let Some(dir) = self.dirs.get(parent) {
            match dir.stat(name) {
                Ok(meta) => return Some(meta),
                // The directory it was in may have been replaced since: look again.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return None,
            }
        }
        let dir = Arc::new(root.open_dir(parent).ok()?);
        if self.dirs.len() >= MAX_OPEN_DIRS {
            self.dirs.clear();
        }
        self.dirs.insert(parent.to_path_buf(), dir.clone());
        dir.stat(name).ok()
    }

    /// Events were lost: forget everything learnt from them.
    pub fn events_lost(&mut self) {
        for entry in self.entries.values_mut() {
            entry.fresh = false;
            entry.awaiting_close = false;
            entry.written = false;
            if !entry.queued {
                entry.announced = false;
            }
        }
    }

    /// A scan found the file `path` (not a directory) as `metadata` describes it.
    pub fn scanned(&mut self, path: &Path, metadata: &Meta, now: Instant) {
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
    /// settle time (or, for files whose events were missed, nobody has them open
    /// for writing). Forgets files that are gone. Costs one stat per waiting file.
    pub fn settle(&mut self, now: Instant) {
        let mut gone = Vec::new();
        let mut settled = Vec::new();
        let waiting: Vec<PathBuf> = self
            .entries
            .iter()
            .filter(|(_, e)| !(e.queued || e.in_flight || e.failure.is_some() || e.written))
            .map(|(path, _)| path.clone())
            .collect();
        for path in waiting {
            let metadata = match self.look(&path) {
                Some(metadata) if is_candidate(&metadata) => metadata,
                _ => {
                    gone.push(path);
                    continue;
                }
            };
            let fingerprint = Fingerprint::of(&metadata);
            let probe = || match (&self.root, path.strip_prefix(&self.root_path)) {
                (Some(root), Ok(relative)) => writers(root, relative),
                _ => Writers::Unknown,
            };
            let probed = self.entries[&path].probing.then(probe);
            let entry = self.entries.get_mut(&path).expect("listed above");
            if metadata.kind != Kind::File {
                // A link or special file has no writer to wait for (it is
                // reported, never ingested): an open under its name says nothing.
                entry.awaiting_close = false;
            }
            if let Some(probed) = probed {
                match probed {
                    Writers::Some => continue,
                    Writers::None => {
                        entry.announced = true;
                        entry.seen = Some((fingerprint, now));
                    }
                    Writers::Unknown => entry.probing = false,
                }
            }
            match entry.seen {
                Some((seen, since)) if seen == fingerprint => {
                    let wait = if entry.awaiting_close {
                        self.settle.max(ABANDONED_OPEN)
                    } else {
                        self.settle
                    };
                    if entry.announced || now.duration_since(since) >= wait {
                        settled.push(ReadyFile { path, fingerprint });
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
            if entry.written || entry.awaiting_close || entry.failure.is_some() {
                continue;
            }
            entry.in_flight = true;
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
        // An entry that is gone went with its file.
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        entry.in_flight = false;
        entry.queued = false;
        entry.announced = false;
        entry.fresh = false;
        entry.seen = fingerprint.map(|f| (f, now));
    }

    /// Ingesting the file failed: it is tried again when it changes, or at a
    /// rescan after its back-off.
    pub fn failed(&mut self, path: &Path, fingerprint: Fingerprint) {
        // An entry that is gone went with its file.
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        let count = self.failures.entry(path.to_path_buf()).or_insert(0);
        *count += 1;
        let backoff = (1u64 << (*count - 1).min(6)).min(MAX_BACKOFF_RESCANS);
        entry.in_flight = false;
        entry.queued = false;
        entry.announced = false;
        entry.fresh = false;
        entry.failure = Some(Failure {
            fingerprint,
            retry_at_rescan: self.rescans + backoff,
        });
    }

    /// Queues an announced file, as `fingerprint` describes it.
    fn queue_announced(&mut self, path: &Path, fingerprint: Fingerprint) {
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        if entry.queued || entry.in_flight || entry.written || entry.awaiting_close {
            return;
        }
        entry.queued = true;
        entry.probing = false;
        entry.seen = Some((fingerprint, Instant::now()));
        self.ready.push_back(ReadyFile {
            path: path.to_path_buf(),
            fingerprint,
        });
    }

    /// Queues an announced file nobody is writing, as it is now.
    fn queue_if_announced(&mut self, path: &Path) {
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        if entry.queued
            || entry.in_flight
            || !entry.announced
            || entry.written
            || entry.awaiting_close
            || entry.failure.is_some()
        {
            return;
        }
        let now = self.look(path);
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        match now {
            Some(metadata) if is_candidate(&metadata) => {
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

/// Regular files are ingested; symbolic links, FIFOs, sockets and devices are
/// queued too, so that refusing them is reported (they are never opened).
pub fn is_candidate(metadata: &Meta) -> bool {
    metadata.kind != Kind::Dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> (tempfile::TempDir, PathBuf, Tracker) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"data").unwrap();
        let tracker = Tracker::new(Duration::from_secs(5), dir.path());
        (dir, path, tracker)
    }

    #[test]
    fn a_link_settles_even_when_an_open_is_reported_under_its_name() {
        let (dir, _, mut tracker) = tracker();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let start = Instant::now();
        tracker.created(&link);
        tracker.opened(&link);
        tracker.settle(start);
        assert_eq!(tracker.ready_len(), 0);
        tracker.settle(start + Duration::from_secs(6));
        let ready = tracker.take_ready(10);
        assert_eq!(
            ready.len(),
            1,
            "reported after the settle time, not an hour"
        );
        assert_eq!(ready[0].fingerprint.kind, Kind::Symlink);
    }

    fn metadata(path: &Path) -> Meta {
        let parent = Dir::open_trusted(path.parent().unwrap()).unwrap();
        parent.stat(Path::new(path.file_name().unwrap())).unwrap()
    }

    #[test]
    fn a_file_closed_after_writing_is_ready_unless_written_again() {
        let (_dir, path, mut tracker) = tracker();
        tracker.created(&path);
        tracker.opened(&path);
        tracker.written(&path);
        tracker.closed_after_writing(&path);
        assert_eq!(tracker.ready_len(), 1);
        tracker.written(&path);
        assert!(tracker.take_ready(10).is_empty(), "written again since");
        tracker.closed_after_writing(&path);
        assert_eq!(tracker.take_ready(10).len(), 1);
    }

    #[test]
    fn a_new_file_opened_but_not_yet_written_does_not_settle() {
        let (_dir, path, mut tracker) = tracker();
        let start = Instant::now();
        tracker.created(&path);
        tracker.opened(&path);
        tracker.settle(start);
        tracker.settle(start + Duration::from_secs(60));
        assert_eq!(tracker.ready_len(), 0, "its writer may still be preparing");
        tracker.settle(start + ABANDONED_OPEN);
        assert_eq!(tracker.ready_len(), 1, "abandoned after an hour");
    }

    #[test]
    fn a_linked_in_file_settles() {
        let (_dir, path, mut tracker) = tracker();
        let start = Instant::now();
        tracker.created(&path);
        tracker.settle(start);
        tracker.settle(start + Duration::from_secs(6));
        assert_eq!(tracker.ready_len(), 1);
    }

    #[test]
    fn a_file_written_but_not_closed_never_settles() {
        let (_dir, path, mut tracker) = tracker();
        let start = Instant::now();
        tracker.created(&path);
        tracker.opened(&path);
        tracker.written(&path);
        tracker.settle(start);
        tracker.settle(start + Duration::from_secs(60));
        assert_eq!(tracker.ready_len(), 0);
    }

    #[test]
    fn a_scanned_file_is_ready_once_unchanged_for_the_settle_time() {
        let (_dir, path, mut tracker) = tracker();
        let start = Instant::now();
        tracker.scanned(&path, &metadata(&path), start);
        tracker.settle(start + Duration::from_secs(4));
        assert_eq!(tracker.ready_len(), 0);
        std::fs::write(&path, b"more data").unwrap();
        tracker.settle(start + Duration::from_secs(6));
        assert_eq!(
            tracker.ready_len(),
            0,
            "it changed: the settle time starts again"
        );
        tracker.settle(start + Duration::from_secs(10));
        assert_eq!(tracker.ready_len(), 0);
        tracker.settle(start + Duration::from_secs(11));
        assert_eq!(
            tracker.take_ready(10)[0].fingerprint,
            Fingerprint::of(&metadata(&path))
        );
    }

    #[test]
    fn a_failed_file_waits_for_a_change_or_its_back_off() {
        let (_dir, path, mut tracker) = tracker();
        let now = Instant::now();
        tracker.moved_in(&path);
        let ready = tracker.take_ready(10).pop().unwrap();
        tracker.failed(&path, ready.fingerprint);
        // Our own read of it shows up as an open (closes of readers do not).
        tracker.opened(&path);
        tracker.settle(now + Duration::from_secs(60));
        assert_eq!(tracker.ready_len(), 0, "no retry before a rescan");
        tracker.rescan_started();
        tracker.scanned(&path, &metadata(&path), now);
        assert_eq!(
            tracker.take_ready(10).len(),
            1,
            "retried at the next rescan"
        );
        tracker.failed(&path, ready.fingerprint);
        tracker.rescan_started();
        tracker.scanned(&path, &metadata(&path), now);
        assert_eq!(tracker.ready_len(), 0, "the second back-off is two rescans");
        tracker.rescan_started();
        tracker.scanned(&path, &metadata(&path), now);
        assert_eq!(tracker.take_ready(10).len(), 1);
        tracker.failed(&path, ready.fingerprint);
        tracker.closed_after_writing(&path);
        assert_eq!(tracker.take_ready(10).len(), 1, "rewritten: tried at once");
    }

    #[test]
    fn a_file_found_in_a_new_directory_is_complete_once_nobody_writes_it() {
        let (_dir, path, mut tracker) = tracker();
        let now = Instant::now();
        tracker.found_in_new_directory(&path, &metadata(&path), || Writers::Some, now);
        assert_eq!(tracker.ready_len(), 0, "its writer still has it open");
        // The writer's close is seen once the directory is watched.
        tracker.closed_after_writing(&path);
        assert_eq!(tracker.take_ready(10).len(), 1);

        let (_dir, path, mut tracker) = self::tracker();
        tracker.found_in_new_directory(&path, &metadata(&path), || Writers::None, now);
        assert_eq!(
            tracker.take_ready(10).len(),
            1,
            "closed before its events were watched"
        );

        let (_dir, path, mut tracker) = self::tracker();
        tracker.found_in_new_directory(&path, &metadata(&path), || Writers::Unknown, now);
        tracker.settle(now + Duration::from_secs(4));
        assert_eq!(
            tracker.ready_len(),
            0,
            "cannot tell: the settle rule decides"
        );
        tracker.settle(now + Duration::from_secs(6));
        assert_eq!(tracker.ready_len(), 1);

        let (_dir, path, mut tracker) = self::tracker();
        tracker.created(&path);
        tracker.found_in_new_directory(&path, &metadata(&path), || Writers::None, now);
        assert_eq!(tracker.ready_len(), 0, "known from its events: they decide");
    }

    #[test]
    fn lost_events_are_forgotten() {
        let (_dir, path, mut tracker) = tracker();
        let start = Instant::now();
        tracker.created(&path);
        tracker.opened(&path);
        tracker.written(&path);
        tracker.events_lost();
        tracker.scanned(&path, &metadata(&path), start);
        tracker.settle(start + Duration::from_secs(6));
        assert_eq!(tracker.ready_len(), 1, "settled by the scan's rule");
    }
}
