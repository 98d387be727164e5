//! Ingesting one batch of complete drop-box files, in quire's commit order:
//!
//! 1. name each file; look the names up: a name already recorded with the same
//!    bytes means the file was ingested before (it is only removed or moved aside
//!    now); with other bytes, the file is refused;
//! 2. open each new file, check it is still what was found complete, and read it
//!    once, hashing it (configured algorithm + BLAKE3) and, unless its inode can
//!    be linked into the store, copying it into an unnamed file there;
//! 3. record the batch's intent (one transaction), so that a crash from here on
//!    can be undone at start-up;
//! 4. link or name every file at `<store>/<name>` without replacing anything, and
//!    make bytes and entries durable (one filesystem sync for a large batch);
//! 5. record File + Instance for all of them and forget the intent (one
//!    transaction);
//! 6. only then remove each file from the drop-box, or move it aside.
//!
//! Steps 1 to 4 are `prepare_batch`, 5 and 6 `record_batch` (in `complete`), so
//! that a runner can record one batch while it prepares the next. A file refused
//! at any step is left where it is, with a verdict saying why.

mod complete;
mod finish;
mod parallel;
mod place;
mod prepare;
mod record;
mod stores;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::db::DbError;
use crate::db::repo::files::Obstacle;
use crate::db::repo::{files, instances};
use crate::dropbox::layout::Layout;
use crate::dropbox::problems::Problem;
use crate::dropbox::tracker::{Fingerprint, ReadyFile};
use crate::fsroot::Dir;
use crate::model::{File, Instance};
use crate::node::{Claim, Node};
use crate::store::{ParentDirs, Store};
use complete::{failed, finish_file, take_back_unrecorded};
use finish::Parents;
use parallel::parallel_map;
use place::{How, Placement, place_all};
use prepare::{Opened, name_of, open, read_once};
use record::write_intent;
use stores::StoreChoice;

pub use complete::record_batch;

/// How the ingest of one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded now; removed from the drop-box or moved aside.
    Ingested,
    /// Its bytes were already recorded under its name; removed or moved aside.
    AlreadyIngested,
    /// It changed since it was found complete (its fingerprint now, if known).
    NotReady(Option<Fingerprint>),
    /// It is no longer there.
    Gone,
    /// It stays in the drop-box for this reason; the fingerprint it had.
    Failed(Problem, Fingerprint),
}

/// Files of one store whose bytes are placed and durable, awaiting their record.
pub struct Placed {
    intent: u64,
    /// Everything the intent covers.
    targets: Vec<Target>,
    placed: Vec<Placement>,
    /// The batch's names, claimed until this is dropped (after its record).
    claims: Arc<Vec<Claim>>,
}

/// Where an intent puts a file, and the identity of what it puts there.
pub struct Target {
    name: String,
    /// The directory of `<store>/<name>`, opened symlink-free, and the name's last
    /// component.
    parent: Arc<Dir>,
    base: PathBuf,
    device: u64,
    inode: u64,
}

impl Placed {
    /// The drop-box files it holds.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.placed.iter().map(|p| p.opened.path.as_path())
    }
}

/// Steps 1 to 4 for `files` of the drop-box `layout`: verdicts for the files that
/// are settled already, and the placed files of each store, to be recorded.
pub fn prepare_batch(
    node: &Node,
    layout: &Layout,
    files: Vec<ReadyFile>,
) -> (Vec<(PathBuf, Verdict)>, Vec<Placed>) {
    let mut verdicts = Vec::with_capacity(files.len());
    let max_size = node.config.maximal_upload_size_bytes;
    let mut named = Vec::with_capacity(files.len());
    for ready in files {
        match name_of(layout, &ready) {
            Ok((relative, name)) => named.push((ready, relative, name)),
            Err(verdict) => verdicts.push((ready.path, verdict)),
        }
    }
    if named.is_empty() {
        return (verdicts, Vec::new());
    }
    let existing = match read_existing(node, &named) {
        Ok(existing) => existing,
        Err(error) => {
            let problem = Problem::Database {
                error: error.to_string(),
            };
            verdicts.extend(named.into_iter().map(|(ready, _, _)| {
                let fingerprint = ready.fingerprint;
                (ready.path, Verdict::Failed(problem.clone(), fingerprint))
            }));
            return (verdicts, Vec::new());
        }
    };
    let root = match Dir::open_trusted(&layout.root) {
        Ok(root) => root,
        Err(error) => {
            let problem = Problem::Unreadable {
                error: format!("the drop-box directory cannot be opened: {error}"),
            };
            verdicts.extend(named.into_iter().map(|(ready, _, _)| {
                let fingerprint = ready.fingerprint;
                (ready.path, Verdict::Failed(problem.clone(), fingerprint))
            }));
            return (verdicts, Vec::new());
        }
    };
    let dropbox_device = root.meta().map_or(0, |m| m.device);
    let mut choice = StoreChoice::for_batch(node, layout.config.store.as_deref(), dropbox_device);
    let mut work = Vec::with_capacity(named.len());
    let mut made: HashMap<u64, ParentDirs> = HashMap::new();
    // New names stay claimed until recorded or taken back (see `node::claims`).
    let mut claims = Vec::new();
    for ((ready, relative, name), existing) in named.into_iter().zip(existing) {
        let destination = match existing {
            Ok(Some(record)) => Destination::Known(record),
            Err(problem) => {
                verdicts.push((ready.path, Verdict::Failed(problem, ready.fingerprint)));
                continue;
            }
            Ok(None) => match claim_and_take(node, &mut claims, &name, &mut choice, &ready) {
                Ok(None) => {
                    // Busy for now: tried again once it settles again, silently.
                    let fingerprint = Some(ready.fingerprint);
                    verdicts.push((ready.path, Verdict::NotReady(fingerprint)));
                    continue;
                }
                Ok(Some((store, device))) => {
                    let link = layout.config.link && device == ready.fingerprint.device;
                    let (parent, base) = match parent_ready(&store, &name, &mut made) {
                        Ok(found) => found,
                        Err(error) => {
                            let problem = Problem::Placement {
                                error: error.to_string(),
                            };
                            let fingerprint = ready.fingerprint;
                            verdicts.push((ready.path, Verdict::Failed(problem, fingerprint)));
                            continue;
                        }
                    };
                    Destination::New {
                        store,
                        device,
                        link,
                        parent,
                        base,
                    }
                }
                Err(problem) => {
                    let fingerprint = ready.fingerprint;
                    verdicts.push((ready.path, Verdict::Failed(problem, fingerprint)));
                    continue;
                }
            },
        };
        work.push((ready, relative, name, destination));
    }
    let algorithms = [layout.config.checksum];
    let parents = Parents::new(&root);
    let euid = rustix::process::geteuid().as_raw();
    let read = parallel_map(work, |(ready, relative, name, destination)| {
        let opened = match open(layout, &root, &ready, (relative, name), max_size, euid) {
            Ok(opened) => opened,
            Err(verdict) => return Err((ready.path, verdict)),
        };
        match destination {
            Destination::Known(record) => Err(finish_known(layout, &parents, opened, record)),
            Destination::New {
                store,
                device,
                link,
                parent,
                base,
            } => read_new(opened, store, device, link, (parent, base), &algorithms),
        }
    });
    let mut by_store: Vec<(Arc<Store>, Vec<Placement>)> = Vec::new();
    for result in read {
        match result {
            Ok(placement) => match by_store
                .iter_mut()
                .find(|(s, _)| s.id == placement.store.id)
            {
                Some((_, group)) => group.push(placement),
                None => by_store.push((placement.store.clone(), vec![placement])),
            },
            Err(verdict) => verdicts.push(verdict),
        }
    }
    let mut placed = Vec::new();
    let claims = Arc::new(claims);
    for (store, group) in by_store {
        if let Some(mut group) = place_group(node, &store, group, &mut verdicts) {
            group.claims = claims.clone();
            placed.push(group);
        }
    }
    (verdicts, placed)
}

/// Claims a new file's name, then takes room for it from `choice`. `None` when
/// the name nests with one another request or batch is placing right now (this
/// file's own earlier batch included): a passing state, never a failure; once
/// that one is recorded, a retry sees it in the database.
fn claim_and_take(
    node: &Node,
    claims: &mut Vec<Claim>,
    name: &str,
    choice: &mut StoreChoice,
    ready: &ReadyFile,
) -> Result<Option<(Arc<Store>, u64)>, Problem> {
    let (claim, answer) = node.claims.claim(&[name], "a drop-box");
    claims.push(claim);
    if let Some(Err(busy)) = answer.into_iter().next() {
        tracing::debug!(%name, other = %busy.other, by = busy.by, "drop-box file waits for a name being stored");
        return Ok(None);
    }
    choice.take(ready.fingerprint.size).map(Some)
}

/// Where a file goes: its name is recorded already, or it is new to `store`.
enum Destination {
    Known(Existing),
    New {
        store: Arc<Store>,
        device: u64,
        link: bool,
        /// The directory the file goes in, and its name there.
        parent: Arc<Dir>,
        base: PathBuf,
    },
}

/// What is recorded under a name: the file and its local copies.
type Existing = (File, Vec<Instance>);

/// The records already under each file's name, read in one transaction; a name
/// inside a recorded file, or holding one, is a problem.
fn read_existing(
    node: &Node,
    named: &[(ReadyFile, PathBuf, String)],
) -> Result<Vec<Result<Option<Existing>, Problem>>, DbError> {
    node.db.read(|tx| {
        let names: Vec<&str> = named.iter().map(|(_, _, name)| name.as_str()).collect();
        let obstacles = files::obstacles(tx, &names)?;
        let mut found = Vec::with_capacity(names.len());
        for (name, obstacle) in names.into_iter().zip(obstacles) {
            found.push(match obstacle {
                None => Ok(None),
                Some(Obstacle::Same) => Ok(files::get_file(tx, name)?.map(|f| (f, vec![]))),
                Some(Obstacle::Inside(file)) => Err(Problem::BadName {
                    why: format!("'{name}' would lie inside the stored file '{file}'"),
                }),
                Some(Obstacle::Holds(file)) => Err(Problem::BadName {
                    why: format!("'{name}' is the directory of the stored file '{file}'"),
                }),
            });
            if let Some(Ok(Some((_, copies)))) = found.last_mut() {
                *copies = instances::of_file(tx, name)?;
            }
        }
        Ok(found)
    })
}

/// Batches prepared at once create store directories one at a time, so that a
/// directory another batch made is durable before this one finds it there (a
/// directory that exists already is not synced again).
static MAKING_DIRECTORIES: Mutex<()> = Mutex::new(());

/// Creates (durably, once per batch) and opens, symlink-free, the store directory
/// a new file goes in; gives it with the file's name there.
fn parent_ready(
    store: &Store,
    name: &str,
    made: &mut HashMap<u64, ParentDirs>,
) -> std::io::Result<(Arc<Dir>, PathBuf)> {
    let parents = match made.entry(store.id) {
        std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
        std::collections::hash_map::Entry::Vacant(empty) => empty.insert(ParentDirs::of(store)?),
    };
    let making = MAKING_DIRECTORIES.lock().unwrap_or_else(|e| e.into_inner());
    let (parent, base) = parents.for_name(name)?;
    drop(making);
    Ok((parent, base.to_path_buf()))
}

/// A file whose name is recorded already: the same bytes mean it was ingested
/// before (a crash came between record and removal, or it was dropped twice), and
/// it is only removed or moved aside; other bytes are refused.
fn finish_known(
    layout: &Layout,
    parents: &Parents,
    file: Opened,
    (record, copies): Existing,
) -> (PathBuf, Verdict) {
    let algorithm = record.checksum.algorithm;
    let digests = match read_once(&file, &[algorithm], None) {
        Ok(digests) => digests,
        Err(verdict) => return (file.path, verdict),
    };
    let same = digests.size == record.size
        && digests.get(algorithm) == Some(&record.checksum)
        && (copies.is_empty() || copies.iter().any(|c| c.blake3 == digests.blake3()));
    if !same {
        let name = file.name.clone();
        return failed(file, Problem::NameTaken { name });
    }
    finish_file(layout, parents, file, Verdict::AlreadyIngested)
}

/// Reads a new file once: hashed, and copied into an unnamed file in its store
/// unless its very inode is to be linked there.
fn read_new(
    opened: Opened,
    store: Arc<Store>,
    device: u64,
    same_filesystem_link: bool,
    (parent, base): (Arc<Dir>, PathBuf),
    algorithms: &[crate::model::Algorithm],
) -> Result<Placement, (PathBuf, Verdict)> {
    let link = same_filesystem_link && opened.sole_and_ours;
    let target = store.file_path(&opened.name);
    let (mut how, target_inode) = if link {
        (How::Link, opened.fingerprint.inode)
    } else {
        let created = store
            .create_unnamed_in(parent.clone(), &base, &opened.name)
            .and_then(|mut unnamed| {
                let inode = unnamed.file().metadata()?.ino();
                Ok((unnamed, inode))
            });
        match created {
            Ok((unnamed, inode)) => (How::Copy(unnamed), inode),
            Err(error) => {
                let problem = Problem::Placement {
                    error: error.to_string(),
                };
                return Err(failed(opened, problem));
            }
        }
    };
    let copy = match &mut how {
        How::Copy(unnamed) => Some(unnamed.file()),
        _ => None,
    };
    let digests = match read_once(&opened, algorithms, copy) {
        Ok(digests) => digests,
        Err(verdict) => return Err((opened.path, verdict)),
    };
    Ok(Placement {
        opened,
        store,
        digests,
        how,
        target,
        parent,
        base,
        target_device: device,
        target_inode,
    })
}

/// Steps 3 and 4 for the files of one store; `None` when nothing was placed.
fn place_group(
    node: &Node,
    store: &Store,
    group: Vec<Placement>,
    verdicts: &mut Vec<(PathBuf, Verdict)>,
) -> Option<Placed> {
    let intent = match write_intent(node, store.id, &group) {
        Ok(intent) => intent,
        Err(error) => {
            let problem = Problem::Database {
                error: error.to_string(),
            };
            verdicts.extend(group.into_iter().map(|p| failed(p.opened, problem.clone())));
            return None;
        }
    };
    let targets = group
        .iter()
        .map(|p| Target {
            name: p.opened.name.clone(),
            parent: p.parent.clone(),
            base: p.base.clone(),
            device: p.target_device,
            inode: p.target_inode,
        })
        .collect();
    let mut placed = Vec::with_capacity(group.len());
    for result in place_all(group) {
        match result {
            Ok(placement) => placed.push(placement),
            Err(refused) => verdicts.push(refused),
        }
    }
    let batch = Placed {
        intent,
        targets,
        placed,
        claims: Arc::default(),
    };
    if batch.placed.is_empty() {
        // Nothing to record: take back whatever a failure left, forget the intent.
        take_back_unrecorded(node, batch.intent, &batch.targets, &HashSet::new());
        return None;
    }
    Some(batch)
}
