//! `create_local_clone`, the SneakerNet drive filler: copies the files of
//! `clone_from` whose instance there is younger than `age_in_days` and that have no
//! instance yet on any `clone_to` store onto the first target with room, oldest
//! first, at most `files_per_run` per run. Each copy is verified from the drive
//! before it is recorded as an instance (see `local_copy`).
//!
//! A drive that goes away is reported once per outage (`store_watch`), never once
//! per file; a copy interrupted by the drive leaving is not an error of the file.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::TaskContext;
use super::clone_targets::{self, Choice};
use super::config::CreateLocalClone;
use super::local_copy::{CopyError, Expected, copy_verified};
use super::store_watch;
use crate::db::DbError;
use crate::db::repo::{files, instances, next_id};
use crate::integrity::{Verification, record_outcome};
use crate::model::{Algorithm, Checksum, File, Instance, Timestamp};
use crate::node::Node;
use crate::store::Store;

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
    let since = Timestamp::now().plus_micros(-((settings.age_in_days * 86_400e6) as i64));
    let candidates = select(node, &source, &targets, since)?;
    let caller = format!("task {}", context.task_name());
    let mut copies = 0;
    for (file, instance) in candidates {
        if copies >= settings.files_per_run || !context.keep_going() {
            break;
        }
        let choice = clone_targets::choose(
            node,
            &targets,
            file.size,
            settings.disable_store_on_full,
            &caller,
        )?;
        let target = match choice {
            Choice::Target(target) => target,
            Choice::NoRoom { why } => {
                context.item_failed(format!(
                    "no target store has room for '{}' ({} bytes): {why}; stopping this run",
                    file.name, file.size
                ));
                break;
            }
            Choice::NoneUsable => {
                tracing::info!(task = %context.task_name(),
                    "every target store is disabled or unavailable; nothing to copy to");
                break;
            }
        };
        if copy_one(context, &file, &instance, &target, &caller)? {
            copies += 1;
        }
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
) -> Result<Vec<(File, Instance)>, DbError> {
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

/// Copies one file and records the new instance; returns whether a copy was made.
/// Failures of the file are counted; an `Err` stops the run (the database failed).
fn copy_one(
    context: &TaskContext,
    file: &File,
    source: &Instance,
    target: &Arc<Store>,
    caller: &str,
) -> anyhow::Result<bool> {
    let node = context.node();
    let expected = Expected {
        size: file.size,
        blake3: source.blake3,
    };
    let copied = match copy_verified(Path::new(&source.path), target, &file.name, expected) {
        Ok(copied) => copied,
        Err(CopyError::Io(error)) if !store_watch::check_available(node, target)? => {
            // The drive left in the middle of the copy: its outage is reported once.
            tracing::debug!(file = %file.name, %error, "copy interrupted by the drive leaving");
            return Ok(false);
        }
        Err(CopyError::SourceDiffers { path, size, blake3 }) => {
            let outcome = Verification {
                instance: source.clone(),
                current: Some((Checksum::new(Algorithm::Blake3, blake3.to_vec()), size)),
                matches: false,
                cached: false,
                problem: None,
            };
            record_outcome(&node.db, file, &outcome, caller)?;
            context.item_failed(format!(
                "'{}' was not copied to '{}': the source {path} does not match its record",
                file.name, target.name
            ));
            return Ok(false);
        }
        Err(error) => {
            context.item_failed(format!(
                "'{}' was not copied to '{}': {error}",
                file.name, target.name
            ));
            return Ok(false);
        }
    };
    if copied.adopted {
        tracing::info!(file = %file.name, store = %target.name,
            "adopted a verified copy left by an interrupted run");
    }
    record_instance(node, file, source, target, &copied.target, expected)?;
    context.item_done();
    Ok(true)
}

/// Records the copy as an instance on `target`, unless one appeared meanwhile.
fn record_instance(
    node: &Node,
    file: &File,
    source: &Instance,
    target: &Store,
    path: &Path,
    expected: Expected,
) -> Result<(), DbError> {
    let now = Timestamp::now();
    let mut instance = Instance {
        id: 0,
        file_name: file.name.clone(),
        store_id: target.id,
        path: path.to_string_lossy().into_owned(),
        deletion_policy: source.deletion_policy,
        created_time: now,
        available: true,
        blake3: expected.blake3,
        verified_time: now,
    };
    node.db.write_blocking(move |txn| {
        let exists = instances::of_file(txn, &instance.file_name)?
            .iter()
            .any(|i| i.store_id == instance.store_id);
        if !exists {
            instance.id = next_id(txn, "instances")?;
            instances::put_instance(txn, &instance)?;
        }
        Ok(Ok::<_, DbError>(()))
    })
}
