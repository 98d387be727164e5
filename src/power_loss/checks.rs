//! The checks of a record: the order of its events (`order`), and the state a
//! replayed power loss leaves, before and after start-up recovery (`records_hold`,
//! `recovered`). Each finding is a sentence saying what broke where.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::model::Durable;
use crate::checksum::digest_path;
use crate::db::Db;
use crate::db::repo::files::FileQuery;
use crate::db::repo::instances::InstanceQuery;
use crate::db::repo::{dropbox_intents, files, instances, transfers, upload_intents};
use crate::model::{File, Instance};
use crate::node::Node;
use crate::store::durable::record::{InodeId, Log, Op};

/// A store's directories.
#[derive(Debug, Clone)]
pub struct StoreDirs {
    pub id: u64,
    pub root: PathBuf,
    pub staging: PathBuf,
    /// A drive (not ingestable) keeps verified copies a crash left unrecorded:
    /// the next `create_local_clone` run adopts them.
    pub drive: bool,
}

impl StoreDirs {
    pub fn of(node: &Node) -> Vec<StoreDirs> {
        node.stores
            .all()
            .iter()
            .map(|s| StoreDirs {
                id: s.id,
                root: s.root.clone(),
                staging: s.staging.clone(),
                drive: !s.ingestable,
            })
            .collect()
    }

    /// Whether `path` is a committed name in this store (not in its staging).
    fn holds(&self, path: &Path) -> bool {
        path.starts_with(&self.root) && !path.starts_with(&self.staging)
    }
}

/// A drop-box: its directory and the prefix of the names of its files.
#[derive(Debug, Clone)]
pub struct DropboxDirs {
    pub root: PathBuf,
    pub prefix: String,
}

/// What one database copy holds.
struct Summary {
    files: HashMap<String, File>,
    instances: Vec<Instance>,
    /// Every path an upload or drop-box intent is about to name.
    intent_targets: HashSet<PathBuf>,
}

/// Database copies read so far, by path.
#[derive(Default)]
struct Summaries(HashMap<PathBuf, Rc<Summary>>);

impl Summaries {
    fn of(&mut self, snapshot: &Path) -> Rc<Summary> {
        self.0
            .entry(snapshot.to_path_buf())
            .or_insert_with(|| Rc::new(summarize(snapshot)))
            .clone()
    }
}

/// Reads a copy of a database copy (opening one may repair it).
fn summarize(snapshot: &Path) -> Summary {
    let dir = tempfile::tempdir().expect("a directory for a database copy");
    let copy = dir.path().join("copy.redb");
    fs::copy(snapshot, &copy).expect("copying a database copy");
    let db = Db::open(&copy).expect("a database copy opens");
    db.read(|tx| {
        let all_files = files::search(
            tx,
            &FileQuery {
                limit: usize::MAX,
                ..FileQuery::default()
            },
        )?;
        let all_instances = instances::search(
            tx,
            &InstanceQuery {
                limit: usize::MAX,
                ..InstanceQuery::default()
            },
        )?;
        let mut intent_targets = HashSet::new();
        for intent in upload_intents::all_intents(tx)? {
            intent_targets.extend(intent.items.into_iter().map(|i| PathBuf::from(i.target)));
        }
        for intent in dropbox_intents::all_intents(tx)? {
            intent_targets.extend(intent.items.into_iter().map(|i| PathBuf::from(i.target)));
        }
        Ok(Summary {
            files: all_files.into_iter().map(|f| (f.name.clone(), f)).collect(),
            instances: all_instances,
            intent_targets,
        })
    })
    .expect("reading a database copy")
}

/// A short description of event `index` of the record, for findings.
pub fn describe(log: &Log, index: usize) -> String {
    match &log.events[index].op {
        Op::SyncedFile { path, .. } => format!("fsync of file {}", path.display()),
        Op::SyncedDir { path, .. } => format!("fsync of directory {}", path.display()),
        Op::SyncedFilesystem { .. } => "syncfs".into(),
        Op::MadeDir { path } => format!("mkdir {}", path.display()),
        Op::Renamed { from, to, .. } => {
            format!("rename {} -> {}", from.display(), to.display())
        }
        Op::Linked { to, .. } => format!("link -> {}", to.display()),
        Op::Removed { path } => format!("unlink {}", path.display()),
        Op::Evicted { path, .. } => format!("page-cache eviction of {}", path.display()),
        Op::DbCommitted { .. } => "database commit".into(),
        Op::Acknowledged { what, .. } => format!("acknowledgement of {what}"),
    }
}

/// A file that became reachable by a new name: its path, inode and bytes then.
type Named<'a> = (&'a Path, &'a InodeId, &'a [u8]);

/// Where a rename or link put a name, and every file that became reachable by it.
fn named_by(op: &Op) -> Option<(&Path, Vec<Named<'_>>)> {
    match op {
        Op::Renamed { to, files, .. } => Some((
            to.as_path(),
            files
                .iter()
                .map(|(path, inode, bytes)| (path.as_path(), inode, bytes.as_slice()))
                .collect(),
        )),
        Op::Linked { to, inode, bytes } => {
            Some((to.as_path(), vec![(to.as_path(), inode, bytes.as_slice())]))
        }
        _ => None,
    }
}

/// Checks the order of the record's events; returns the findings.
pub fn order(log: &Log, stores: &[StoreDirs], dropbox: Option<&DropboxDirs>) -> Vec<String> {
    let mut findings = Vec::new();
    let mut durable = Durable::initial(log);
    let mut summaries = Summaries::default();
    let in_store = |path: &Path| stores.iter().any(|s| s.holds(path));
    for (index, event) in log.events.iter().enumerate() {
        let at = format!("event {index} ({})", describe(log, index));
        let unsynced = |inode: &InodeId, bytes: &[u8]| {
            durable.contents.get(inode).map(|b| b.as_slice()) != Some(bytes)
        };
        if let Some((to, named)) = named_by(&event.op)
            && in_store(&log.root.join(to))
        {
            let target = log.root.join(to);
            let covered = summaries
                .of(&durable.database)
                .intent_targets
                .contains(&target);
            for (path, inode, bytes) in named {
                if unsynced(inode, bytes) && !covered {
                    findings.push(format!(
                        "{at}: the bytes of {} were not synced before its name appeared in \
                         the store, and no durable intent lists that name",
                        path.display()
                    ));
                }
            }
        }
        match &event.op {
            Op::Evicted { path, inode, bytes } if unsynced(inode, bytes) => {
                findings.push(format!(
                    "{at}: {} was read back for verification before its bytes were synced \
                     (the read-back came from the page cache, not the medium)",
                    path.display()
                ));
            }
            Op::Removed { path } => {
                let path = log.root.join(path);
                if let Some(dropbox) = dropbox
                    && let Ok(relative) = path.strip_prefix(&dropbox.root)
                {
                    let name = Path::new(&dropbox.prefix).join(relative);
                    let name = name.to_string_lossy();
                    if !summaries.of(&durable.database).files.contains_key(&*name) {
                        findings.push(format!(
                            "{at}: the drop-box file of {name} was removed before its record \
                             was durable"
                        ));
                    }
                }
            }
            Op::Acknowledged { what, records } => {
                let summary = summaries.of(&durable.database);
                for record in records {
                    let has_copy = summary
                        .instances
                        .iter()
                        .any(|i| i.file_name == record.name && i.store_id == record.store_id);
                    if !(summary.files.contains_key(&record.name) && has_copy) {
                        findings.push(format!(
                            "{at}: {what} was acknowledged before the record of {} (with a \
                             copy on store {}) was durable",
                            record.name, record.store_id
                        ));
                    }
                }
            }
            _ => {}
        }
        durable.apply(&event.op);
    }
    findings
}

/// Every recorded copy must be at its path with its recorded bytes.
pub fn records_hold(node: &Node, when: &str, findings: &mut Vec<String>) {
    let recorded = node.db.read(|tx| {
        let query = InstanceQuery {
            limit: usize::MAX,
            ..InstanceQuery::default()
        };
        let all = instances::search(tx, &query)?;
        let mut with_files = Vec::with_capacity(all.len());
        for instance in all {
            let file = files::get_file(tx, &instance.file_name)?;
            with_files.push((instance, file));
        }
        Ok(with_files)
    });
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(error) => return findings.push(format!("{when}: cannot read the records: {error}")),
    };
    for (instance, file) in recorded {
        let Some(file) = file else {
            findings.push(format!(
                "{when}: a copy of {} is recorded without its file record",
                instance.file_name
            ));
            continue;
        };
        let problem = match digest_path(Path::new(&instance.path), &[]) {
            Err(error) => Some(format!("cannot be read ({error})")),
            Ok(found) if found.size != file.size => Some(format!(
                "holds {} bytes, not the recorded {}",
                found.size, file.size
            )),
            Ok(found) if found.blake3() != instance.blake3 => {
                Some("holds other bytes than recorded".to_string())
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            findings.push(format!(
                "{when}: {} is recorded at {} but the copy {problem}: its record committed \
                 before its bytes or its directory entry were durable",
                file.name, instance.path
            ));
        }
    }
}

/// Whether the unrecorded `path` on a drive holds exactly the bytes of a copy
/// recorded elsewhere under the same name (a later copy adopts them).
fn adoptable(recorded: &[Instance], drive: &StoreDirs, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(&drive.root) else {
        return false;
    };
    let name = relative.to_string_lossy();
    let Ok(found) = digest_path(path, &[]) else {
        return false;
    };
    recorded
        .iter()
        .any(|i| i.file_name == name && i.blake3 == found.blake3())
}

/// What start-up recovery must leave: no bytes in a store without a record, no
/// staging without a live transfer, no intent.
pub fn recovered(node: &Node, when: &str, findings: &mut Vec<String>) {
    records_hold(node, when, findings);
    let state = node.db.read(|tx| {
        let query = InstanceQuery {
            limit: usize::MAX,
            ..InstanceQuery::default()
        };
        Ok((
            instances::search(tx, &query)?,
            transfers::live_incoming(tx)?,
            upload_intents::all_intents(tx)?.len() + dropbox_intents::all_intents(tx)?.len(),
        ))
    });
    let (recorded, live, intents) = match state {
        Ok(state) => state,
        Err(error) => return findings.push(format!("{when}: cannot read the records: {error}")),
    };
    if intents > 0 {
        findings.push(format!("{when}: {intents} intents are left after recovery"));
    }
    for store in StoreDirs::of(node) {
        let copies: HashSet<PathBuf> = recorded
            .iter()
            .filter(|i| i.store_id == store.id)
            .map(|i| PathBuf::from(&i.path))
            .collect();
        let walk = walkdir::WalkDir::new(&store.root)
            .into_iter()
            .filter_entry(|e| e.path() != store.staging);
        for entry in walk.flatten() {
            let path = entry.path();
            if entry.file_type().is_dir()
                || path.ancestors().any(|a| copies.contains(a))
                || (store.drive && adoptable(&recorded, &store, path))
            {
                continue;
            }
            findings.push(format!(
                "{when}: {} is in store {} but no record points at it",
                path.display(),
                store.id
            ));
        }
        let owned: HashSet<&str> = live
            .iter()
            .filter(|t| t.store_id == store.id)
            .map(|t| t.staging_name.as_str())
            .collect();
        for entry in fs::read_dir(&store.staging).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !owned.contains(name.as_str()) {
                findings.push(format!(
                    "{when}: staging {name} of store {} belongs to no live transfer",
                    store.id
                ));
            }
        }
    }
}
