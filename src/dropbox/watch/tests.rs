//! The watcher against a real directory: what it tells, under which paths, and
//! what it keeps quiet about (the node's own links, permission changes and
//! removals; whatever lies behind a link or has moved out). Silence is checked by
//! a marker file made afterwards: events come in order, so everything before the
//! marker's creation has been told by the time it is.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::{Event, Message, Watcher, start_watcher};
use crate::config::DropboxConfig;
use crate::dropbox::filter::Filter;
use crate::dropbox::layout::Layout;

/// Longest wait for an event that must come.
const DEADLINE: Duration = Duration::from_secs(30);

struct Watched {
    /// Holds the drop-box (`in`) and room outside it (`out`).
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    events: Receiver<Message>,
    _watcher: Watcher,
}

/// A watched drop-box; `before` runs on it before the watcher starts.
fn watched(before: impl FnOnce(&Path, &Path)) -> Watched {
    let dir = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(dir.path()).unwrap();
    let (root, outside) = (base.join("in"), base.join("out"));
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    before(&root, &outside);
    let config: DropboxConfig = serde_json::from_value(serde_json::json!({
        "path": root,
        "prefix": "p",
        "after_ingest": "delete",
    }))
    .unwrap();
    let layout = Layout {
        index: 0,
        filter: Filter::new(&config.ignore, None),
        config,
        root: root.clone(),
        move_to: None,
    };
    let (sender, events) = mpsc::channel();
    let watcher = start_watcher(&layout, sender).unwrap();
    Watched {
        _dir: dir,
        root,
        outside,
        events,
        _watcher: watcher,
    }
}

impl Watched {
    /// Every event up to and including the first `until` accepts.
    fn until(&self, until: impl Fn(&Event) -> bool) -> Vec<Event> {
        let started = Instant::now();
        let mut seen = Vec::new();
        while started.elapsed() < DEADLINE {
            let Ok(Message::Events(events)) = self.events.recv_timeout(DEADLINE) else {
                continue;
            };
            for event in events {
                let done = until(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
        }
        panic!("no awaited event within {DEADLINE:?}; saw {seen:?}");
    }

    /// Makes the file `name` in the drop-box and returns every event until its
    /// creation was told (everything that happened before it, in order).
    fn marker(&self, name: &str) -> Vec<Event> {
        let marker = self.root.join(name);
        fs::write(&marker, b"marker").unwrap();
        self.until(|e| *e == Event::Created(marker.clone()))
    }
}

fn concerning<'a>(events: &'a [Event], under: &Path) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| match e {
            Event::Created(p)
            | Event::Opened(p)
            | Event::Written(p)
            | Event::ClosedAfterWriting(p)
            | Event::MovedIn(p)
            | Event::MovedOut(p)
            | Event::DirCreated(p)
            | Event::DirMovedIn(p)
            | Event::DirGone(p) => p.starts_with(under),
            Event::Lost | Event::RootLost => false,
        })
        .collect()
}

#[test]
fn a_written_file_is_told_from_creation_to_close() {
    let w = watched(|_, _| {});
    let file = w.root.join("a.dat");
    fs::write(&file, b"bytes").unwrap();
    let events = w.until(|e| matches!(e, Event::ClosedAfterWriting(_)));
    assert_eq!(
        events,
        vec![
            Event::Created(file.clone()),
            Event::Opened(file.clone()),
            Event::Written(file.clone()),
            Event::ClosedAfterWriting(file),
        ]
    );
}

#[test]
fn a_new_directory_is_watched_before_it_is_told() {
    let w = watched(|_, _| {});
    let sub = w.root.join("sub");
    fs::create_dir(&sub).unwrap();
    w.until(|e| *e == Event::DirCreated(sub.clone()));
    // Made after the directory was told of, so its watch must see it.
    let file = sub.join("b.dat");
    fs::write(&file, b"bytes").unwrap();
    w.until(|e| *e == Event::ClosedAfterWriting(file.clone()));
}

#[test]
fn directories_present_at_the_start_and_moved_in_are_watched() {
    let w = watched(|root, outside| {
        fs::create_dir_all(root.join("old/deep")).unwrap();
        fs::create_dir_all(outside.join("tree/deep")).unwrap();
    });
    let old = w.root.join("old/deep/a.dat");
    fs::write(&old, b"bytes").unwrap();
    w.until(|e| *e == Event::ClosedAfterWriting(old.clone()));

    let tree = w.root.join("tree");
    fs::rename(w.outside.join("tree"), &tree).unwrap();
    w.until(|e| *e == Event::DirMovedIn(tree.clone()));
    let file = tree.join("deep/b.dat");
    fs::write(&file, b"bytes").unwrap();
    w.until(|e| *e == Event::ClosedAfterWriting(file.clone()));
}

#[test]
fn the_nodes_own_links_permission_changes_and_removals_make_no_event() {
    let w = watched(|_, _| {});
    let file = w.root.join("a.dat");
    fs::write(&file, b"bytes").unwrap();
    w.until(|e| *e == Event::ClosedAfterWriting(file.clone()));
    // What ingesting a file does to it: a second name elsewhere, read-only, its
    // drop-box name removed.
    fs::hard_link(&file, w.outside.join("stored")).unwrap();
    let mut permissions = fs::metadata(&file).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(&file, permissions).unwrap();
    fs::remove_file(&file).unwrap();
    let events = w.marker("marker");
    assert_eq!(concerning(&events, &file), Vec::<&Event>::new());
}

#[test]
fn a_directory_moved_out_is_no_longer_watched_and_one_renamed_is_watched_anew() {
    let w = watched(|root, _| {
        fs::create_dir(root.join("leaving")).unwrap();
        fs::create_dir(root.join("renamed")).unwrap();
    });
    let leaving = w.root.join("leaving");
    let gone = w.outside.join("left");
    fs::rename(&leaving, &gone).unwrap();
    w.until(|e| *e == Event::DirGone(leaving.clone()));
    fs::write(gone.join("a.dat"), b"bytes").unwrap();
    let events = w.marker("marker-1");
    assert_eq!(concerning(&events, &leaving), Vec::<&Event>::new());

    let (from, to) = (w.root.join("renamed"), w.root.join("now"));
    fs::rename(&from, &to).unwrap();
    let events = w.until(|e| *e == Event::DirMovedIn(to.clone()));
    assert!(events.contains(&Event::DirGone(from.clone())), "{events:?}");
    let file = to.join("b.dat");
    fs::write(&file, b"bytes").unwrap();
    let events = w.until(|e| *e == Event::ClosedAfterWriting(file.clone()));
    assert_eq!(concerning(&events, &from), Vec::<&Event>::new());
}

#[test]
fn nothing_behind_a_link_to_a_directory_is_watched() {
    let w = watched(|root, outside| {
        fs::create_dir(outside.join("target")).unwrap();
        std::os::unix::fs::symlink(outside.join("target"), root.join("early")).unwrap();
    });
    let late = w.root.join("late");
    std::os::unix::fs::symlink(w.outside.join("target"), &late).unwrap();
    // The link itself is a new name in the drop-box (the tracker finds it is a
    // link and reports it); it is not a directory to watch.
    w.until(|e| *e == Event::Created(late.clone()));
    fs::write(w.outside.join("target/a.dat"), b"bytes").unwrap();
    let events = w.marker("marker");
    assert_eq!(concerning(&events, &late), Vec::<&Event>::new());
    assert_eq!(
        concerning(&events, &w.root.join("early")),
        Vec::<&Event>::new()
    );
}

#[test]
fn ignored_directories_are_not_watched() {
    let w = watched(|root, _| fs::create_dir(root.join(".hidden")).unwrap());
    fs::write(w.root.join(".hidden/a.dat"), b"bytes").unwrap();
    let events = w.marker("marker");
    assert_eq!(
        concerning(&events, &w.root.join(".hidden")),
        Vec::<&Event>::new()
    );
}

#[test]
fn the_drop_box_directory_going_away_is_told() {
    let w = watched(|_, _| {});
    fs::rename(&w.root, w.outside.join("moved")).unwrap();
    w.until(|e| *e == Event::RootLost);
}
