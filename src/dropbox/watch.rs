//! The notify watcher of one drop-box (recursive: directories created later are
//! watched too), and the translation of its events into what the tracker learns.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{Config, Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::ingest::Verdict;
use super::layout::Layout;
use super::tracker::Tracker;

/// What the runner of a drop-box receives.
pub enum Message {
    Event(notify::Result<Event>),
    /// The recorder's verdicts on a placed batch.
    Recorded(Vec<(PathBuf, Verdict)>),
    /// Shut down after the batch in hand.
    Stop,
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

/// Starts watching `root` and every directory below it (links to directories
/// are not followed: what lies behind them is none of the drop-box's); events go
/// to `sender`.
pub fn start_watcher(root: &Path, sender: Sender<Message>) -> notify::Result<RecommendedWatcher> {
    let handler = move |event: notify::Result<Event>| {
        // Events that change nothing the tracker knows (the node's own links and
        // permission changes among them: two per ingested file) are dropped here,
        // so they cost the runner neither a message nor a wake-up.
        if let Ok(event) = &event
            && !event.need_rescan()
            && !matters(&event.kind)
        {
            return;
        }
        // The runner is gone only when shutting down; events then do not matter.
        let _ = sender.send(Message::Event(event));
    };
    let config = Config::default().with_follow_symlinks(false);
    let mut watcher = RecommendedWatcher::new(handler, config)?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// Applies one event to the tracker.
pub fn apply(
    layout: &Layout,
    tracker: &mut Tracker,
    event: notify::Result<Event>,
    follow: &mut FollowUp,
) {
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(dropbox = %layout.root.display(), %error, "drop-box watcher error; rescanning");
            follow.rescan = true;
            return;
        }
    };
    if event.need_rescan() {
        follow.rescan = true;
        return;
    }
    if !matters(&event.kind) {
        return;
    }
    for path in &event.paths {
        if path == &layout.root {
            if matches!(
                event.kind,
                EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
            ) {
                follow.root_lost = true;
            }
            continue;
        }
        if layout.relative(path).is_none() {
            continue;
        }
        apply_one(layout, tracker, &event.kind, path, follow);
    }
}

/// Whether events of `kind` change what the tracker knows (metadata changes,
/// reader closes and the like do not).
fn matters(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_))
            | EventKind::Create(_)
            | EventKind::Remove(_)
    )
}

fn apply_one(
    layout: &Layout,
    tracker: &mut Tracker,
    kind: &EventKind,
    path: &Path,
    follow: &mut FollowUp,
) {
    match kind {
        EventKind::Access(AccessKind::Open(_)) => tracker.opened(path),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            tracker.closed_after_writing(path)
        }
        EventKind::Modify(ModifyKind::Data(_)) => tracker.written(path),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            if layout.is_directory(path) {
                follow.moved_in_dirs.push(path.to_path_buf());
            } else {
                tracker.moved_in(path);
            }
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => tracker.removed(path, false),
        EventKind::Create(CreateKind::Folder) => follow.created_dirs.push(path.to_path_buf()),
        EventKind::Create(_) => tracker.created(path),
        EventKind::Remove(RemoveKind::Folder) => tracker.removed(path, true),
        EventKind::Remove(_) => tracker.removed(path, false),
        _ => {}
    }
}
