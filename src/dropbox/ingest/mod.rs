//! Ingesting one batch of complete drop-box files, in quire's commit order:
//!
//! 1. open each file and check it is still what was found complete;
//! 2. look its name up: a name already recorded with the same bytes means the
//!    file was ingested before (it is only removed or moved aside now); with other
//!    bytes, the file is refused;
//! 3. read each new file once, hashing it (configured algorithm + BLAKE3) and,
//!    unless its inode can be linked into the store, copying it into an unnamed
//!    file there;
//! 4. record the batch's intent (one transaction), so a crash from here on can be
//!    undone at start-up;
//! 5. link or name every file at `<store>/<name>` without replacing anything, and
//!    make bytes and entries durable (one filesystem sync for a large batch);
//! 6. record File + Instance for all of them and forget the intent (one
//!    transaction);
//! 7. only then remove each file from the drop-box, or move it aside.
//!
//! A file refused at any step is left where it is, with a verdict saying why.

mod finish;
mod parallel;
mod place;
mod prepare;
mod record;
mod stores;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::db::DbError;
use crate::db::repo::{files, instances};
use crate::dropbox::layout::Layout;
use crate::dropbox::problems::Problem;
use crate::dropbox::tracker::{Fingerprint, ReadyFile};
use crate::model::{File, Instance};
use crate::node::Node;
use crate::store::Store;
use parallel::parallel_map;
use place::{How, Placement, place_all};
use prepare::{Opened, open, read_once};
use record::{RecordAs, forget_intent, record_all, write_intent};
use stores::StoreChoice;

pub use place::take_back;

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

/// Ingests `files` of the drop-box `layout`; one verdict per file.
pub fn ingest_batch(
    node: &Node,
    layout: &Layout,
    files: Vec<ReadyFile>,
) -> Vec<(PathBuf, Verdict)> {
    let mut verdicts = Vec::with_capacity(files.len());
    let max_size = node.config.maximal_upload_size_bytes;
    let opened_all = parallel_map(files, |ready| {
        let path = ready.path.clone();
        (path, open(layout, &ready, max_size))
    });
    let mut opened = Vec::with_capacity(opened_all.len());
    for (path, result) in opened_all {
        match result {
            Ok(file) => opened.push(file),
            Err(verdict) => verdicts.push((path, verdict)),
        }
    }
    if opened.is_empty() {
        return verdicts;
    }
    let existing = match read_existing(node, &opened) {
        Ok(existing) => existing,
        Err(error) => {
            let problem = Problem::Database {
                error: error.to_string(),
            };
            verdicts.extend(opened.into_iter().map(|o| failed(o, problem.clone())));
            return verdicts;
        }
    };
    let dropbox_device = std::fs::metadata(&layout.root).map_or(0, |m| m.dev());
    let mut choice = StoreChoice::for_batch(node, layout.config.store.as_deref(), dropbox_device);
    let mut known = Vec::new();
    let mut new = Vec::new();
    for (file, existing) in opened.into_iter().zip(existing) {
        match existing {
            Some(record) => known.push((file, record)),
            None => match choice.take(file.fingerprint.size) {
                Ok((store, device)) => new.push((file, store, device)),
                Err(problem) => verdicts.push(failed(file, problem)),
            },
        }
    }
    verdicts.extend(finish_known(layout, known));
    verdicts.extend(ingest_new(node, layout, new));
    verdicts
}

/// What is recorded under a name: the file and its local copies.
type Existing = (File, Vec<Instance>);

/// The records already under each file's name, read in one transaction.
fn read_existing(node: &Node, opened: &[Opened]) -> Result<Vec<Option<Existing>>, DbError> {
    node.db.read(|tx| {
        let names: Vec<&str> = opened.iter().map(|o| o.name.as_str()).collect();
        let taken = files::exist_all(tx, &names)?;
        let mut found = Vec::with_capacity(names.len());
        for (name, taken) in names.into_iter().zip(taken) {
            found.push(match taken {
                false => None,
                true => files::get_file(tx, name)?.map(|f| (f, vec![])),
            });
            if let Some(Some((_, copies))) = found.last_mut() {
                *copies = instances::of_file(tx, name)?;
            }
        }
        Ok(found)
    })
}

/// Files whose name is recorded already: the same bytes mean they were ingested
/// before (a crash came between record and removal, or the file was dropped
/// twice), and they are only removed or moved aside; other bytes are refused.
fn finish_known(layout: &Layout, known: Vec<(Opened, Existing)>) -> Vec<(PathBuf, Verdict)> {
    parallel_map(known, |(file, (record, copies))| {
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
        finish(layout, file, Verdict::AlreadyIngested)
    })
}

/// Files with new names: steps 3 to 7, one intent and one record transaction per
/// store.
fn ingest_new(
    node: &Node,
    layout: &Layout,
    new: Vec<(Opened, Arc<Store>, u64)>,
) -> Vec<(PathBuf, Verdict)> {
    let mut verdicts = Vec::new();
    let mut made = HashSet::new();
    let mut planned = Vec::with_capacity(new.len());
    for (file, store, store_device) in new {
        let link =
            layout.config.link && file.sole_and_ours && store_device == file.fingerprint.device;
        match plan(file, store, store_device, link, &mut made) {
            Ok(placement) => planned.push(placement),
            Err(verdict) => verdicts.push(verdict),
        }
    }
    let algorithms = [layout.config.checksum];
    let read = parallel_map(planned, |mut placement| {
        let copy = match &mut placement.how {
            How::Copy(unnamed) => Some(unnamed.file()),
            _ => None,
        };
        match read_once(&placement.opened, &algorithms, copy) {
            Ok(digests) => {
                placement.digests = digests;
                Ok(placement)
            }
            Err(verdict) => Err((placement.opened.path.clone(), verdict)),
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
    for (store, group) in by_store {
        verdicts.extend(place_and_record(node, layout, &store, group));
    }
    verdicts
}

/// Decides where a new file goes and, for a copy, opens the unnamed file.
fn plan(
    opened: Opened,
    store: Arc<Store>,
    store_device: u64,
    link: bool,
    made: &mut HashSet<PathBuf>,
) -> Result<Placement, (PathBuf, Verdict)> {
    let target = store.file_path(&opened.name);
    let (how, target_inode) = if link {
        (How::Link, opened.fingerprint.inode)
    } else {
        let created = store
            .create_unnamed(&opened.name, made)
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
    Ok(Placement {
        opened,
        store,
        digests: crate::checksum::Digests {
            size: 0,
            checksums: Vec::new(),
        },
        how,
        target,
        target_device: store_device,
        target_inode,
    })
}

/// Steps 4 to 7 for the files of one store.
fn place_and_record(
    node: &Node,
    layout: &Layout,
    store: &Store,
    group: Vec<Placement>,
) -> Vec<(PathBuf, Verdict)> {
    let mut verdicts = Vec::new();
    let intent = match write_intent(node, store.id, &group) {
        Ok(intent) => intent,
        Err(error) => {
            let problem = Problem::Database {
                error: error.to_string(),
            };
            return group
                .into_iter()
                .map(|p| failed(p.opened, problem.clone()))
                .collect();
        }
    };
    let targets: Vec<(String, PathBuf, u64, u64)> = group
        .iter()
        .map(|p| {
            (
                p.opened.name.clone(),
                p.target.clone(),
                p.target_device,
                p.target_inode,
            )
        })
        .collect();
    let mut placed = Vec::with_capacity(group.len());
    for result in place_all(group) {
        match result {
            Ok(placement) => placed.push(placement),
            Err(refused) => verdicts.push(refused),
        }
    }
    let record_as = RecordAs {
        uploader: &layout.config.uploader,
        algorithm: layout.config.checksum,
        deletion_policy: layout.config.deletion_policy,
    };
    let all_placed = placed.len() == targets.len();
    let recorded = if placed.is_empty() {
        Ok(Vec::new())
    } else {
        record_all(node, intent, &placed, &record_as, all_placed)
    };
    // Without an answer from the database nothing is recorded.
    let (accepted, database_problem) = match recorded {
        Ok(accepted) => (accepted, None),
        Err(error) => {
            let problem = Problem::Database {
                error: error.to_string(),
            };
            (vec![false; placed.len()], Some(problem))
        }
    };
    let mut finished = Vec::with_capacity(placed.len());
    let mut recorded_names = HashSet::new();
    for (placement, recorded) in placed.into_iter().zip(accepted) {
        if recorded {
            recorded_names.insert(placement.opened.name.clone());
            finished.push(placement.opened);
        } else {
            let name = placement.opened.name.clone();
            let problem = database_problem
                .clone()
                .unwrap_or(Problem::NameTaken { name });
            verdicts.push(failed(placement.opened, problem));
        }
    }
    // Whatever is placed but not recorded is taken back; the intent goes only
    // once nothing of the batch is left unrecorded in the store.
    let mut clean = true;
    for (name, target, device, inode) in &targets {
        if recorded_names.contains(name) {
            continue;
        }
        if let Err(error) = take_back(target, *device, *inode) {
            tracing::error!(target = %target.display(), %error, "cannot take back a drop-box placement; start-up will");
            clean = false;
        }
    }
    if clean && recorded_names.len() != targets.len() {
        forget_quietly(node, intent);
    }
    verdicts.extend(parallel_map(finished, |file| {
        finish(layout, file, Verdict::Ingested)
    }));
    verdicts
}

/// Forgets an intent whose placements are all recorded or taken back; if that
/// fails, start-up recovery forgets it.
fn forget_quietly(node: &Node, intent: u64) {
    if let Err(error) = forget_intent(node, intent) {
        tracing::warn!(intent, %error, "cannot forget a drop-box intent; start-up will");
    }
}

/// Step 7 for a recorded file.
fn finish(layout: &Layout, file: Opened, done: Verdict) -> (PathBuf, Verdict) {
    match finish::after_ingest(layout, &file) {
        Ok(()) => (file.path, done),
        Err(error) => failed(
            file,
            Problem::AfterIngest {
                error: error.to_string(),
            },
        ),
    }
}

fn failed(file: Opened, problem: Problem) -> (PathBuf, Verdict) {
    let fingerprint = file.fingerprint;
    (file.path, Verdict::Failed(problem, fingerprint))
}
