//! `check_integrity`: re-hash (BLAKE3, all cores) a store's available instances
//! younger than `age_in_days`. A copy that matched within `checksum_timeout` and
//! has not changed on disk since is trusted (the cache rule of `integrity`); a
//! changed or missing copy becomes a corrupt-file record and an error that
//! `search/error` shows (once per copy; repeats count up on the record).

use anyhow::Context;
use rayon::prelude::*;

use super::TaskContext;
use crate::config::tasks::CheckIntegrity;
use crate::db::repo::{files, instances};
use crate::integrity::{Verification, record_outcomes, verify_instance_blake3};
use crate::model::{File, Instance, Timestamp};

/// Instances hashed between two checks of the soft timeout (in parallel).
const CHUNK: usize = 64;

/// Runs one pass over the store.
pub fn run(context: &TaskContext, settings: &CheckIntegrity) -> anyhow::Result<()> {
    let node = context.node();
    let store = node.stores.by_name(&settings.store_name).with_context(|| {
        format!(
            "there is no store named '{}'; fix store_name in the task's configuration",
            settings.store_name
        )
    })?;
    if !store.available() {
        // An unplugged drive: its copies are away, not corrupt.
        anyhow::bail!(
            "store '{}' is unavailable ({} is missing); its copies were not checked",
            store.name,
            store.root.display()
        );
    }
    let since = Timestamp::days_ago(settings.age_in_days);
    let store_id = store.id;
    let candidates: Vec<(File, Instance)> = node.db.read(|tx| {
        let mut found = Vec::new();
        for id in instances::ids_of_store(tx, store_id)? {
            let Some(instance) = instances::get_instance(tx, id)? else {
                continue;
            };
            if !instance.available || instance.created_time < since {
                continue;
            }
            if let Some(file) = files::get_file(tx, &instance.file_name)? {
                found.push((file, instance));
            }
        }
        Ok(found)
    })?;
    let trust_for = node.config.checksum_timeout;
    for chunk in candidates.chunks(CHUNK) {
        if !context.keep_going() {
            break;
        }
        let outcomes: Vec<(File, Verification)> = chunk
            .par_iter()
            .map(|(file, instance)| {
                (
                    file.clone(),
                    verify_instance_blake3(&node.stores, file, instance, trust_for),
                )
            })
            .collect();
        for (file, outcome) in &outcomes {
            if outcome.matches {
                context.item_done();
            } else {
                let what = match &outcome.problem {
                    Some(problem) => format!("unreadable or missing ({problem})"),
                    None => "changed".to_string(),
                };
                context.item_failed(format!(
                    "instance {} of '{}' at {} is {what}",
                    outcome.instance.id, file.name, outcome.instance.path
                ));
            }
        }
        record_outcomes(&node.db, outcomes, &format!("task {}", context.task_name()))?;
    }
    Ok(())
}
