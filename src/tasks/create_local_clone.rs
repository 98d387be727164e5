//! `create_local_clone`, the SneakerNet drive filler: copies the files of
//! `clone_from` whose instance there is younger than `age_in_days` and that have no
//! instance yet on any `clone_to` store onto the first target with room, oldest
//! first, at most `files_per_run` per run. Each copy is verified from the drive
//! before it is recorded as an instance (see `local_copy`).
//!
//! Files are copied in batches that share their durability costs; the soft timeout
//! and shutdown are checked between batches. A drive that goes away is reported
//! once per outage (`store_watch`), never once per file; a copy interrupted by the
//! drive leaving is not an error of the file.

use std::iter::Peekable;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::TaskContext;
use super::clone_targets::{self, Choice};
use super::local_copy::{Copied, CopyError, CopyItem, Expected, copy_verified};
use super::store_watch;
use crate::config::tasks::CreateLocalClone;
use crate::db::DbError;
use crate::db::repo::{files, instances, next_ids};
use crate::integrity::{Verification, record_outcome};
use crate::model::{Algorithm, Checksum, File, Instance, Timestamp};
use crate::node::Node;
use crate::store::Store;

/// Most files in one batch.
const BATCH_FILES: usize = 1024;
/// Most bytes in one batch (a larger file makes a batch of its own).
const BATCH_BYTES: u64 = 512 << 20;

/// A source instance with its file.
type Candidate = (File, Instance);

/// Runs one pass.
pub fn run(context: &TaskContext, settings: &CreateLocalClone) -> anyhow::Result<()> {
    let node = context.node();
    let store_named = |name: &str| {
        node.stores.by_name(name).cloned().with_context(|| {
            format!("there is no store named '{name}'; fix the task's configuration")
        })
    };
    let source = store_named(&settings.clone_from)?;
    let targets = settings
        .clone_to
        .iter()
        .map(|name| store_named(name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !store_watch::check_available(node, &source)? {
        anyhow::bail!("the source store '{}' is unavailable", source.name);
    }
    let since = Timestamp::days_ago(settings.age_in_days);
    let mut pending = select(node, &source, &targets, since)?
        .into_iter()
        .peekable();
    let caller = format!("task {}", context.task_name());
    let mut copies = 0;
    while copies < settings.files_per_run && context.keep_going() {
        let Some((first, _)) = pending.peek() else {
            break;
        };
        let choice = clone_targets::choose(
            node,
            &targets,
            first.size,
            settings.disable_store_on_full,
            &caller,
        )?;
        let (target, free) = match choice {
            Choice::Target { store, free } => (store, free),
            Choice::NoRoom { why } => {
                context.item_failed(format!(
                    "no target store has room for '{}' ({} bytes): {why}; stopping this run",
                    first.name, first.size
                ));
                break;
            }
            Choice::NoneUsable => {
                tracing::info!(task = %context.task_name(),
                    "every target store is disabled or unavailable; nothing to copy to");
                break;
            }
        };
        let batch = next_batch(&mut pending, free, settings.files_per_run - copies);
        copies += copy_batch(context, &batch, &target, &caller)?;
    }
    Ok(())
}

/// Source instances (with their files) to copy, oldest first: available, created
/// since `since`, and of files without an instance on any target.
fn select(
    node: &Node,
    source: &Store,
    targets: &[Arc<Store>],
    since: Timestamp,
) -> Result<Vec<Candidate>, DbError> {
    let target_ids: Vec<u64> = targets.iter().map(|t| t.id).collect();
    node.db.read(|tx| {
        let mut found = Vec::new();
        for id in instances::ids_of_store(tx, source.id)? {
            let Some(instance) = instances::get_instance(tx, id)? else {
                continue;
            };
            if !instance.available || instance.created_time < since {
                continue;
            }
            let on_target = instances::of_file(tx, &instance.file_name)?
                .iter()
                .any(|i| target_ids.contains(&i.store_id));
            if on_target {
                continue;
            }
            if let Some(file) = files::get_file(tx, &instance.file_name)? {
                found.push((file, instance));
            }
        }
        Ok(found)
    })
}

/// Takes the next files that fit together in `free` bytes, at most `limit` of
/// them. The first one always fits (the target was chosen for it).
fn next_batch(
    pending: &mut Peekable<impl Iterator<Item = Candidate>>,
    free: u64,
    limit: usize,
) -> Vec<Candidate> {
    let mut batch: Vec<Candidate> = Vec::new();
    let mut bytes = 0u64;
    while let Some((file, _)) = pending.peek() {
        let total = bytes.saturating_add(file.size);
        let full = batch.len() >= BATCH_FILES.min(limit)
            || total > free
            || (!batch.is_empty() && total > BATCH_BYTES);
        if full {
            break;
        }
        bytes = total;
        batch.extend(pending.next());
    }
    batch
}

/// Copies a batch to `target` and records the new instances; returns how many
/// copies were made. Failures of files are counted; an `Err` stops the run (the
/// database failed).
fn copy_batch(
    context: &TaskContext,
    batch: &[Candidate],
    target: &Arc<Store>,
    caller: &str,
) -> anyhow::Result<usize> {
    let node = context.node();
    // A source is read from its store's root, symlink-free; a source outside any
    // configured store root is not copied.
    let mut located: Vec<&Candidate> = Vec::with_capacity(batch.len());
    let mut items: Vec<CopyItem> = Vec::with_capacity(batch.len());
    for candidate in batch {
        let (file, instance) = candidate;
        let path = Path::new(&instance.path);
        let Some((store, relative)) = node
            .stores
            .by_id(instance.store_id)
            .and_then(|store| Some((store, store.relative_path(path)?)))
        else {
            context.item_failed(format!(
                "'{}' was not copied to '{}': its copy {} is not under the root of a configured store",
                file.name, target.name, instance.path
            ));
            continue;
        };
        located.push(candidate);
        items.push(CopyItem {
            source_root: store.root.clone(),
            source: relative.to_path_buf(),
            name: file.name.clone(),
            expected: Expected {
                size: file.size,
                blake3: instance.blake3,
            },
        });
    }
    let results = copy_verified(target, &items);
    let mut drive_left = None;
    let mut made = Vec::new();
    for ((file, source), result) in located.into_iter().zip(results) {
        match result {
            Ok(copied) => made.push((file, source, copied)),
            Err(CopyError::Io(error)) if *drive_left.get_or_insert_with(|| !target.available()) => {
                // Its outage is reported once, below.
                tracing::debug!(file = %file.name, %error, "copy interrupted by the drive leaving");
            }
            Err(CopyError::SourceDiffers { path, size, blake3 }) => {
                let outcome = Verification {
                    instance: source.clone(),
                    current: Some((Checksum::new(Algorithm::Blake3, blake3.to_vec()), size)),
                    matches: false,
                    cached: false,
                    computed_time: crate::model::Timestamp::now(),
                    stat: None,
                    problem: None,
                };
                record_outcome(&node.db, file, &outcome, caller)?;
                context.item_failed(format!(
                    "'{}' was not copied to '{}': the source {path} does not match its record",
                    file.name, target.name
                ));
            }
            Err(error) => context.item_failed(format!(
                "'{}' was not copied to '{}': {error}",
                file.name, target.name
            )),
        }
    }
    if drive_left == Some(true) {
        store_watch::check_available(node, target)?;
    }
    let count = made.len();
    record_instances(node, target, &made)?;
    for _ in 0..count {
        context.item_done();
    }
    Ok(count)
}

/// Records the copies as instances on `target` in one transaction, except where
/// an instance of the file on `target` appeared meanwhile.
fn record_instances(
    node: &Node,
    target: &Store,
    made: &[(&File, &Instance, Copied)],
) -> Result<(), DbError> {
    if made.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now();
    let new: Vec<Instance> = made
        .iter()
        .map(|(file, source, copied)| {
            if copied.adopted {
                tracing::info!(file = %file.name, store = %target.name,
                    "adopted a verified copy left by an interrupted run");
            }
            Instance::verified_copy(
                &file.name,
                target.id,
                &copied.target,
                source.deletion_policy,
                source.blake3,
                now,
            )
        })
        .collect();
    node.db.write_blocking(move |txn| {
        let mut fresh = Vec::with_capacity(new.len());
        for instance in new {
            let exists = instances::of_file(txn, &instance.file_name)?
                .iter()
                .any(|i| i.store_id == instance.store_id);
            if !exists {
                fresh.push(instance);
            }
        }
        if !fresh.is_empty() {
            let first_id = next_ids(txn, "instances", fresh.len() as u64)?;
            for (offset, instance) in fresh.iter_mut().enumerate() {
                instance.id = first_id + offset as u64;
            }
            instances::put_instances(txn, &fresh)?;
        }
        Ok(Ok::<_, DbError>(()))
    })
}
