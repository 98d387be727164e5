//! The watcher thread of one drop-box: its watches, and the reading and
//! translating of their events (see the parent module for what is watched and
//! why).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use super::{Event, Message};
use crate::dropbox::layout::Layout;
use crate::fsroot::{Dir, Kind};

/// What a watch asks the kernel for. `ONLYDIR`: only directories are watched.
const MASK: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::OPEN)
    .union(WatchFlags::MODIFY)
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::ONLYDIR);
/// After the first event of a burst, how long more may gather before they are
/// read (at most this much later than they could have been).
const GATHER: Duration = Duration::from_millis(2);
/// How often the thread looks whether it should stop while nothing happens.
const IDLE_POLL_MS: i32 = 100;
/// Bytes read at once: room for about 2,000 events with short names.
const BUFFER_BYTES: usize = 64 << 10;
/// Most reads whose events go into one message.
const READS_PER_MESSAGE: usize = 8;

/// Watches the drop-box of `layout` (its directory before this returns, or an
/// error) and starts the thread that reads the events, until `stop` is set.
pub(super) fn start(
    layout: &Layout,
    sender: Sender<Message>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
    let root = Dir::open_trusted(&layout.root)?;
    let mut watches = Watches {
        layout: layout.clone(),
        by_wd: HashMap::new(),
        root_wd: -1,
        limit_reported: false,
    };
    watches.root_wd = watches.add(fd.as_fd(), &root, layout.root.clone())?;
    watches.add_below(fd.as_fd(), &root, &layout.root);
    std::thread::Builder::new()
        .name(format!("quire-dropbox-{}-watch", layout.index))
        .spawn(move || watches.run(&fd, &root, &stop, &sender))
}

/// The watches of one drop-box (on the inotify descriptor its methods are given),
/// owned by its watcher thread.
struct Watches {
    layout: Layout,
    /// Each watch's directory (absolute path, as the drop-box's own path goes).
    by_wd: HashMap<i32, PathBuf>,
    root_wd: i32,
    /// Whether running out of watches was reported already.
    limit_reported: bool,
}

impl Watches {
    /// Watches the directory `dir`, found at `path`.
    fn add(&mut self, fd: BorrowedFd, dir: &Dir, path: PathBuf) -> io::Result<i32> {
        // The descriptor's own entry in /proc: the kernel watches the very
        // directory that was opened symlink-free (following this link, which the
        // node made, is the point; no name in the drop-box is followed).
        let own = format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd());
        match inotify::add_watch(fd, own.as_str(), MASK) {
            Ok(wd) => {
                self.by_wd.insert(wd, path);
                Ok(wd)
            }
            Err(rustix::io::Errno::NOSPC) => {
                if !self.limit_reported {
                    self.limit_reported = true;
                    tracing::warn!(
                        dropbox = %self.layout.root.display(),
                        directory = %path.display(),
                        "out of inotify watches: files in directories not watched are found by rescans only; raise fs.inotify.max_user_watches"
                    );
                }
                Err(io::Error::from(rustix::io::Errno::NOSPC))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Watches every directory below `dir` (found at `path`) that the filter
    /// accepts, opened symlink-free one level at a time.
    fn add_below(&mut self, fd: BorrowedFd, dir: &Dir, path: &Path) {
        let mut pending: Vec<(Dir, PathBuf)> = vec![];
        self.add_children(dir, path, &mut pending);
        while let Some((child, child_path)) = pending.pop() {
            if self.add(fd, &child, child_path.clone()).is_ok() {
                self.add_children(&child, &child_path, &mut pending);
            }
        }
    }

    /// Opens the accepted subdirectories of `dir` (at `path`) onto `pending`.
    fn add_children(&self, dir: &Dir, path: &Path, pending: &mut Vec<(Dir, PathBuf)>) {
        let entries = match dir.entries() {
            Ok(entries) => entries,
            Err(error) => {
                tracing::debug!(directory = %path.display(), %error, "drop-box watcher cannot list a directory");
                return;
            }
        };
        for (name, kind) in entries {
            let child_path = path.join(&name);
            if kind != Kind::Dir || self.layout.relative(&child_path).is_none() {
                continue;
            }
            match dir.open_dir(Path::new(&name)) {
                Ok(child) => pending.push((child, child_path)),
                Err(error) => {
                    tracing::debug!(directory = %child_path.display(), %error, "drop-box watcher cannot open a directory")
                }
            }
        }
    }

    /// Watches the directory that appeared at `path` and everything below it.
    fn add_tree(&mut self, fd: BorrowedFd, root: &Dir, path: &Path) {
        let Ok(relative) = path.strip_prefix(&self.layout.root) else {
            return;
        };
        match root.open_dir(relative) {
            Ok(dir) => {
                if self.add(fd, &dir, path.to_path_buf()).is_ok() {
                    self.add_below(fd, &dir, path);
                }
            }
            // Gone again, or not a directory any more (a link put in its place):
            // nothing to watch.
            Err(error) => {
                tracing::debug!(directory = %path.display(), %error, "drop-box watcher cannot open a new directory")
            }
        }
    }

    /// Stops watching `path` and everything below it.
    fn remove_tree(&mut self, fd: BorrowedFd, path: &Path) {
        let gone: Vec<i32> = self
            .by_wd
            .iter()
            .filter(|(_, p)| p.starts_with(path))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            // The kernel may have dropped it already (the directory was removed).
            let _ = inotify::remove_watch(fd, wd);
            self.by_wd.remove(&wd);
        }
    }

    /// The thread: reads bursts of events and sends them on until told to stop,
    /// the runner is gone, or the drop-box directory went away.
    fn run(mut self, fd: &OwnedFd, root: &Dir, stop: &AtomicBool, sender: &Sender<Message>) {
        let mut buffer = vec![MaybeUninit::<u8>::uninit(); BUFFER_BYTES];
        while !stop.load(Ordering::SeqCst) {
            if !wait_readable(fd) {
                continue;
            }
            std::thread::sleep(GATHER);
            let mut events = Vec::new();
            let mut ended = false;
            for _ in 0..READS_PER_MESSAGE {
                match self.read_once(fd.as_fd(), root, &mut buffer, &mut events) {
                    Read::More => {}
                    Read::Drained => break,
                    Read::RootLost => {
                        ended = true;
                        break;
                    }
                }
            }
            if !events.is_empty() && sender.send(Message::Events(events)).is_err() {
                return;
            }
            if ended {
                return;
            }
        }
    }

    /// Reads what one buffer holds and translates it onto `events`.
    fn read_once(
        &mut self,
        fd: BorrowedFd,
        root: &Dir,
        buffer: &mut [MaybeUninit<u8>],
        events: &mut Vec<Event>,
    ) -> Read {
        let mut reader = inotify::Reader::new(fd, buffer);
        let mut read_any = false;
        loop {
            // The reader refills its buffer only once it is used up: stop there,
            // so that one call is one read.
            if read_any && reader.is_buffer_empty() {
                return Read::More;
            }
            match reader.next() {
                Ok(event) => {
                    read_any = true;
                    let raw = Raw {
                        wd: event.wd(),
                        flags: event.events(),
                        name: event.file_name().map(|n| OsStr::from_bytes(n.to_bytes())),
                    };
                    if self.translate(fd, root, &raw, events) {
                        return Read::RootLost;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => return Read::Drained,
                Err(rustix::io::Errno::INTR) => {}
                Err(error) => {
                    tracing::warn!(dropbox = %self.layout.root.display(), %error, "drop-box watcher cannot read its events; rescanning");
                    events.push(Event::Lost);
                    return Read::Drained;
                }
            }
        }
    }

    /// Translates one kernel event onto `events`, adding and removing watches as
    /// directories come and go. Returns true when the drop-box directory itself
    /// went away (the thread ends: its watches went with it, or are dropped with
    /// the inotify descriptor).
    fn translate(
        &mut self,
        fd: BorrowedFd,
        root: &Dir,
        raw: &Raw,
        events: &mut Vec<Event>,
    ) -> bool {
        let flags = raw.flags;
        if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
            // Directories made meanwhile may have no watch yet.
            let top = self.layout.root.clone();
            self.add_below(fd, root, &top);
            events.push(Event::Lost);
            return false;
        }
        if flags.contains(ReadFlags::IGNORED) {
            self.by_wd.remove(&raw.wd);
            if raw.wd == self.root_wd {
                events.push(Event::RootLost);
                return true;
            }
            return false;
        }
        let Some(dir) = self.by_wd.get(&raw.wd) else {
            // A watch removed meanwhile: its directory is no longer where it was.
            return false;
        };
        if flags.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF) {
            if raw.wd == self.root_wd {
                events.push(Event::RootLost);
                return true;
            }
            // A subdirectory moved away is handled at its parent's MOVED_FROM.
            if flags.contains(ReadFlags::DELETE_SELF) {
                events.push(Event::DirGone(dir.clone()));
            }
            return false;
        }
        // Events about the watched directory itself (it was opened) say nothing.
        let Some(name) = raw.name else {
            return false;
        };
        let path = dir.join(name);
        if self.layout.relative(&path).is_none() {
            return false;
        }
        if flags.contains(ReadFlags::ISDIR) {
            if flags.contains(ReadFlags::CREATE) {
                self.add_tree(fd, root, &path);
                events.push(Event::DirCreated(path));
            } else if flags.contains(ReadFlags::MOVED_TO) {
                self.add_tree(fd, root, &path);
                events.push(Event::DirMovedIn(path));
            } else if flags.contains(ReadFlags::MOVED_FROM) {
                self.remove_tree(fd, &path);
                events.push(Event::DirGone(path));
            }
            return false;
        }
        let event = if flags.contains(ReadFlags::CREATE) {
            Event::Created(path)
        } else if flags.contains(ReadFlags::OPEN) {
            Event::Opened(path)
        } else if flags.contains(ReadFlags::MODIFY) {
            Event::Written(path)
        } else if flags.contains(ReadFlags::CLOSE_WRITE) {
            Event::ClosedAfterWriting(path)
        } else if flags.contains(ReadFlags::MOVED_TO) {
            Event::MovedIn(path)
        } else if flags.contains(ReadFlags::MOVED_FROM) {
            Event::MovedOut(path)
        } else {
            return false;
        };
        events.push(event);
        false
    }
}

/// Waits up to `IDLE_POLL_MS` for events on the inotify descriptor `fd`; true if
/// some are there.
fn wait_readable(fd: &OwnedFd) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, whose descriptor stays open during the call.
    let ready = unsafe { libc::poll(&mut poll, 1, IDLE_POLL_MS) };
    ready > 0
}

/// One kernel event, borrowed from the read buffer.
struct Raw<'a> {
    wd: i32,
    flags: ReadFlags,
    name: Option<&'a OsStr>,
}

/// How one read ended.
enum Read {
    /// The buffer was full: more may be waiting.
    More,
    /// Nothing more to read now.
    Drained,
    /// The drop-box directory went away.
    RootLost,
}
