//! The inotify watcher of one drop-box: one watch per directory (directories made
//! or moved in later are watched as they appear), read by a thread of its own that
//! hands the runner, in one message, every event it read at once, already
//! translated into what the tracker learns.
//!
//! Only what the tracker uses is asked of the kernel: creations, opens, writes,
//! closes after writing, moves in and out, and a directory's own removal. Links,
//! permission changes and removals (the node's own, two or three per ingested file)
//! make no event. The thread reads in bursts: it waits for an event, lets more
//! gather for two milliseconds, then takes them all with one large read, so a burst of
//! files costs a few reads, wake-ups and messages rather than several per file.
//!
//! Invariants: every watched directory was opened through `crate::fsroot` from the
//! drop-box directory (a link is never followed; a link to a directory is never
//! watched), and its watch is placed through that descriptor (`/proc/self/fd/N`),
//! so the watch is on the very directory that was opened; directories the filter
//! rejects are not watched (walks skip them too); a directory that leaves by a
//! move loses its watches (and those of everything below it) before any later
//! event is read, so no event is ever reported under a path it no longer has.

mod reader;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use super::ingest::Verdict;
use super::layout::Layout;
use super::tracker::Tracker;

/// What the runner of a drop-box receives.
pub enum Message {
    /// Events read at once, in order.
    Events(Vec<Event>),
    /// A preparer's verdicts on the files of a batch it did not place, and how
    /// many placed groups it passed on to the recorder.
    Prepared {
        verdicts: Vec<(PathBuf, Verdict)>,
        groups: usize,
    },
    /// The recorder's verdicts on a placed group.
    Recorded(Vec<(PathBuf, Verdict)>),
    /// Shut down after the batch in hand.
    Stop,
}

/// What the watcher saw, with the path (in the drop-box) it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A file appeared (created, or linked in).
    Created(PathBuf),
    /// Someone opened a file (for reading or writing: the kernel does not say).
    Opened(PathBuf),
    /// Someone wrote to a file.
    Written(PathBuf),
    /// Someone who had the file open for writing closed it.
    ClosedAfterWriting(PathBuf),
    /// A file was moved in, or renamed inside the drop-box.
    MovedIn(PathBuf),
    /// A file was moved out, or away from this name.
    MovedOut(PathBuf),
    /// A directory was made: files may have been made in it before its watch.
    DirCreated(PathBuf),
    /// A directory was moved in whole.
    DirMovedIn(PathBuf),
    /// A directory went away (removed, or moved out or away from this name).
    DirGone(PathBuf),
    /// Events were lost (queue overflow, read error): rescan everything.
    Lost,
    /// The drop-box directory itself went away; watch it again when it is back.
    RootLost,
}

/// Work an event leaves for the runner.
#[derive(Debug, Default)]
pub struct FollowUp {
    /// Directories created inside the drop-box: files may have been made in them
    /// before their watch was in place.
    pub created_dirs: Vec<PathBuf>,
    /// Directories moved in whole: every file in them is complete.
    pub moved_in_dirs: Vec<PathBuf>,
    /// Events were lost (queue overflow, watcher error): rescan everything.
    pub rescan: bool,
    /// The drop-box directory itself went away; watch it again when it is back.
    pub root_lost: bool,
}

/// The watcher of one drop-box; dropping it stops its thread (within a tenth of
/// a second).
pub struct Watcher {
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts watching the drop-box of `layout` and every directory below it that
/// the filter accepts; events go to `sender`. The drop-box directory is watched
/// before this returns (an error if it cannot be), and so is every directory
/// already below it that can be.
pub fn start_watcher(layout: &Layout, sender: Sender<Message>) -> io::Result<Watcher> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = reader::start(layout, sender, stop.clone())?;
    Ok(Watcher {
        stop,
        _thread: thread,
    })
}

/// Applies one event to the tracker, leaving directory work in `follow`.
pub fn apply(tracker: &mut Tracker, event: Event, follow: &mut FollowUp) {
    match event {
        Event::Created(path) => tracker.created(&path),
        Event::Opened(path) => tracker.opened(&path),
        Event::Written(path) => tracker.written(&path),
        Event::ClosedAfterWriting(path) => tracker.closed_after_writing(&path),
        Event::MovedIn(path) => tracker.moved_in(&path),
        Event::MovedOut(path) => tracker.removed(&path, false),
        Event::DirCreated(path) => {
            tracker.directories_changed();
            follow.created_dirs.push(path);
        }
        Event::DirMovedIn(path) => {
            tracker.directories_changed();
            follow.moved_in_dirs.push(path);
        }
        Event::DirGone(path) => {
            tracker.directories_changed();
            tracker.removed(&path, true);
        }
        Event::Lost => follow.rescan = true,
        Event::RootLost => follow.root_lost = true,
    }
}
