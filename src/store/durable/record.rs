//! Test builds only: an ordered record of what the durability primitives and the
//! group committer did under one directory, for the power-loss tests
//! (`crate::power_loss`).
//!
//! What a sync made durable is captured *before* the sync starts (the bytes of a
//! file, the entries of a directory, the whole tree for a syncfs), so the record
//! never credits a sync with a change made while it ran; a rename, link, mkdir or
//! unlink is recorded once it is done. Every event also carries every name under
//! the directory as it was just after the event, so a replay can also assume that
//! all metadata reached the disk while unsynced bytes did not. Each database
//! commit is recorded with a copy of the database file as that commit left it,
//! taken on the writer thread before any caller of the commit hears of it.
//!
//! Recorders are found by path: a primitive acting under a recorder's directory
//! reports to it, anything else is ignored, so tests recording in different
//! directories run side by side.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// An inode, told apart from a later inode that reuses its number by its birth time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeId {
    pub device: u64,
    pub inode: u64,
    pub born: SystemTime,
}

impl InodeId {
    fn of(metadata: &fs::Metadata) -> InodeId {
        InodeId {
            device: metadata.dev(),
            inode: metadata.ino(),
            born: metadata.created().unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// What a name points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub inode: InodeId,
    pub dir: bool,
}

/// Every file and directory under the recorded directory, by path relative to it
/// (the directory itself is the empty path). Symbolic links and the database file
/// are left out.
pub type Namespace = BTreeMap<PathBuf, Entry>;

/// The bytes of files, by inode.
pub type Contents = HashMap<InodeId, Arc<Vec<u8>>>;

/// One thing that happened, in the order it happened.
#[derive(Debug, Clone)]
pub enum Op {
    /// An fsync of a file; its bytes when the fsync started.
    SyncedFile {
        path: PathBuf,
        inode: InodeId,
        bytes: Arc<Vec<u8>>,
    },
    /// An fsync of a directory; its entries when the fsync started.
    SyncedDir {
        path: PathBuf,
        inode: InodeId,
        entries: BTreeMap<OsString, Entry>,
    },
    /// A syncfs; everything under the directory when it started.
    SyncedFilesystem {
        namespace: Arc<Namespace>,
        contents: Contents,
    },
    MadeDir {
        path: PathBuf,
    },
    /// A rename; every file now at or under `to`, with its bytes now.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        files: Vec<(PathBuf, InodeId, Arc<Vec<u8>>)>,
    },
    /// A link of an open inode (with its bytes now) to a new name.
    Linked {
        to: PathBuf,
        inode: InodeId,
        bytes: Arc<Vec<u8>>,
    },
    Removed {
        path: PathBuf,
    },
    /// Cached pages dropped before a read-back; the file's bytes then.
    Evicted {
        path: PathBuf,
        inode: InodeId,
        bytes: Arc<Vec<u8>>,
    },
    /// A durable database commit; `snapshot` is a copy of the file it left.
    DbCommitted {
        snapshot: PathBuf,
    },
    /// The test heard of success: these records must be durable by now.
    Acknowledged {
        what: String,
        records: Vec<Acked>,
    },
}

/// A record an acknowledgement promises: a file, and a copy of it on a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub name: String,
    pub store_id: u64,
}

/// An event and every name under the directory just after it.
#[derive(Debug, Clone)]
pub struct Event {
    pub op: Op,
    pub namespace: Arc<Namespace>,
}

/// The state when recording started, taken as durable.
#[derive(Debug)]
pub struct Initial {
    pub namespace: Arc<Namespace>,
    pub contents: Contents,
    /// A copy of the database file.
    pub database: PathBuf,
}

/// Records what happens under `root` until `finish`.
pub struct Recorder {
    root: PathBuf,
    database: PathBuf,
    snapshots: tempfile::TempDir,
    initial: Mutex<Option<Initial>>,
    events: Mutex<Vec<Event>>,
}

/// What a recorder saw.
#[derive(Debug)]
pub struct Log {
    pub root: PathBuf,
    /// The database file's path.
    pub database: PathBuf,
    pub initial: Initial,
    pub events: Vec<Event>,
    /// Holds the database copies.
    _snapshots: tempfile::TempDir,
}

static RECORDERS: Mutex<Vec<Arc<Recorder>>> = Mutex::new(Vec::new());

impl Recorder {
    /// Starts recording everything under `root` (an existing directory) and the
    /// commits of the database file `database` (under `root`). Whatever is there
    /// now counts as durable.
    pub fn start(root: &Path, database: &Path) -> Arc<Recorder> {
        let _ = crate::db::COMMIT_OBSERVER.set(database_committed);
        let root = fs::canonicalize(root).expect("the recorded directory exists");
        let database = fs::canonicalize(database).expect("the database file exists");
        let snapshots = tempfile::tempdir().expect("a directory for database copies");
        let recorder = Arc::new(Recorder {
            root,
            database,
            snapshots,
            initial: Mutex::new(None),
            events: Mutex::new(Vec::new()),
        });
        {
            // Holding the event lock keeps commits out until the copy is taken.
            let _events = recorder.events.lock().expect("event lock");
            let (namespace, contents) = recorder.tree();
            let copy = recorder.snapshots.path().join("initial.redb");
            fs::copy(&recorder.database, &copy).expect("copying the database");
            *recorder.initial.lock().expect("initial lock") = Some(Initial {
                namespace: Arc::new(namespace),
                contents,
                database: copy,
            });
            RECORDERS
                .lock()
                .expect("recorder registry")
                .push(recorder.clone());
        }
        recorder
    }

    /// Records that the test heard `what` succeed, promising `records`.
    pub fn acknowledge(&self, what: &str, records: Vec<Acked>) {
        self.push(Op::Acknowledged {
            what: what.to_string(),
            records,
        });
    }

    /// Stops recording; returns what was recorded.
    pub fn finish(self: Arc<Recorder>) -> Log {
        RECORDERS
            .lock()
            .expect("recorder registry")
            .retain(|r| !Arc::ptr_eq(r, &self));
        // A primitive that found the recorder just before it was unregistered
        // still holds it for the moment it takes to add its event.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut shared = self;
        let recorder = loop {
            match Arc::try_unwrap(shared) {
                Ok(recorder) => break recorder,
                Err(again) if std::time::Instant::now() < deadline => {
                    shared = again;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => panic!("a primitive keeps the recorder"),
            }
        };
        Log {
            root: recorder.root,
            database: recorder.database,
            initial: recorder
                .initial
                .into_inner()
                .expect("initial lock")
                .expect("taken at start"),
            events: recorder.events.into_inner().expect("event lock"),
            _snapshots: recorder.snapshots,
        }
    }

    /// The path relative to the root, if it is under it.
    fn relative(&self, path: &Path) -> Option<PathBuf> {
        path.strip_prefix(&self.root).ok().map(Path::to_path_buf)
    }

    fn push(&self, op: Op) {
        let mut events = self.events.lock().expect("event lock");
        let namespace = Arc::new(self.namespace());
        events.push(Event { op, namespace });
    }

    /// Every name under the root, now.
    fn namespace(&self) -> Namespace {
        let mut namespace = Namespace::new();
        let walk = walkdir::WalkDir::new(&self.root).follow_links(false);
        for entry in walk.into_iter().flatten() {
            if entry.path() == self.database || entry.file_type().is_symlink() {
                continue;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let relative = self.relative(entry.path()).expect("walked under the root");
            let entry = Entry {
                inode: InodeId::of(&metadata),
                dir: metadata.is_dir(),
            };
            namespace.insert(relative, entry);
        }
        namespace
    }

    /// Every name under the root and the bytes of every file, now.
    fn tree(&self) -> (Namespace, Contents) {
        let namespace = self.namespace();
        let mut contents = Contents::new();
        for (relative, entry) in &namespace {
            if !entry.dir
                && !contents.contains_key(&entry.inode)
                && let Ok(bytes) = fs::read(self.root.join(relative))
            {
                contents.insert(entry.inode, Arc::new(bytes));
            }
        }
        (namespace, contents)
    }
}

/// The recorder of the directory holding `path`, if any.
fn recorder_for(path: &Path) -> Option<Arc<Recorder>> {
    let recorders = RECORDERS.lock().expect("recorder registry");
    recorders
        .iter()
        .find(|r| path.starts_with(&r.root))
        .cloned()
}

/// The path an open file was opened at (its directory, for an unnamed file).
fn path_of(file: &fs::File) -> PathBuf {
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    let path = fs::read_link(link).unwrap_or_default();
    let shown = path.to_string_lossy();
    match shown.strip_suffix(" (deleted)") {
        Some(stripped) => PathBuf::from(stripped),
        None => path,
    }
}

/// The bytes of an open file, read through a descriptor of its own (the file may
/// be open for writing only).
fn bytes_of(file: &fs::File) -> Arc<Vec<u8>> {
    let own = format!("/proc/self/fd/{}", file.as_raw_fd());
    Arc::new(fs::read(own).unwrap_or_default())
}

/// What a sync is about to make durable, captured before it runs.
pub struct Seen(Option<(Arc<Recorder>, Op)>);

pub fn before_sync_path(path: &Path) -> Seen {
    let Some(recorder) = recorder_for(path) else {
        return Seen(None);
    };
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return Seen(None);
    };
    let relative = recorder.relative(path).expect("found by path");
    let inode = InodeId::of(&metadata);
    let op = if metadata.is_dir() {
        let mut entries = BTreeMap::new();
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            if entry.path() == recorder.database {
                continue;
            }
            if let Ok(metadata) = fs::symlink_metadata(entry.path())
                && !metadata.file_type().is_symlink()
            {
                let child = Entry {
                    inode: InodeId::of(&metadata),
                    dir: metadata.is_dir(),
                };
                entries.insert(entry.file_name(), child);
            }
        }
        Op::SyncedDir {
            path: relative,
            inode,
            entries,
        }
    } else {
        Op::SyncedFile {
            path: relative,
            inode,
            bytes: Arc::new(fs::read(path).unwrap_or_default()),
        }
    };
    Seen(Some((recorder, op)))
}

pub fn before_sync_file(file: &fs::File) -> Seen {
    let path = path_of(file);
    let Some(recorder) = recorder_for(&path) else {
        return Seen(None);
    };
    let Ok(metadata) = file.metadata() else {
        return Seen(None);
    };
    let op = Op::SyncedFile {
        path: recorder.relative(&path).expect("found by path"),
        inode: InodeId::of(&metadata),
        bytes: bytes_of(file),
    };
    Seen(Some((recorder, op)))
}

pub fn before_sync_filesystem(path: &Path) -> Seen {
    let Some(recorder) = recorder_for(path) else {
        return Seen(None);
    };
    let (namespace, contents) = recorder.tree();
    let op = Op::SyncedFilesystem {
        namespace: Arc::new(namespace),
        contents,
    };
    Seen(Some((recorder, op)))
}

pub fn synced(seen: Seen) {
    if let Some((recorder, op)) = seen.0 {
        recorder.push(op);
    }
}

pub fn made_dir(path: &Path) {
    if let Some(recorder) = recorder_for(path) {
        let path = recorder.relative(path).expect("found by path");
        recorder.push(Op::MadeDir { path });
    }
}

pub fn renamed(from: &Path, to: &Path) {
    let Some(recorder) = recorder_for(to).or_else(|| recorder_for(from)) else {
        return;
    };
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(to).into_iter().flatten() {
        if entry.file_type().is_file()
            && let Ok(metadata) = entry.metadata()
        {
            let bytes = Arc::new(fs::read(entry.path()).unwrap_or_default());
            let path = recorder.relative(entry.path()).unwrap_or_default();
            files.push((path, InodeId::of(&metadata), bytes));
        }
    }
    let op = Op::Renamed {
        from: recorder
            .relative(from)
            .unwrap_or_else(|| from.to_path_buf()),
        to: recorder.relative(to).unwrap_or_else(|| to.to_path_buf()),
        files,
    };
    recorder.push(op);
}

pub fn linked(file: &fs::File, to: &Path) {
    let Some(recorder) = recorder_for(to) else {
        return;
    };
    let Ok(metadata) = file.metadata() else {
        return;
    };
    let op = Op::Linked {
        to: recorder.relative(to).expect("found by path"),
        inode: InodeId::of(&metadata),
        bytes: bytes_of(file),
    };
    recorder.push(op);
}

pub fn removed(path: &Path) {
    if let Some(recorder) = recorder_for(path) {
        let path = recorder.relative(path).expect("found by path");
        recorder.push(Op::Removed { path });
    }
}

pub fn evicted(path: &Path) {
    let Some(recorder) = recorder_for(path) else {
        return;
    };
    let Ok(metadata) = fs::metadata(path) else {
        return;
    };
    let op = Op::Evicted {
        path: recorder.relative(path).expect("found by path"),
        inode: InodeId::of(&metadata),
        bytes: Arc::new(fs::read(path).unwrap_or_default()),
    };
    recorder.push(op);
}

/// The group committer's observer: copies the database file as the commit left it.
fn database_committed(database: &Path) {
    let recorder = {
        let recorders = RECORDERS.lock().expect("recorder registry");
        recorders.iter().find(|r| r.database == database).cloned()
    };
    let Some(recorder) = recorder else {
        return;
    };
    let mut events = recorder.events.lock().expect("event lock");
    let snapshot = recorder
        .snapshots
        .path()
        .join(format!("commit-{}.redb", events.len()));
    fs::copy(database, &snapshot).expect("copying the database");
    let namespace = Arc::new(recorder.namespace());
    events.push(Event {
        op: Op::DbCommitted { snapshot },
        namespace,
    });
}
