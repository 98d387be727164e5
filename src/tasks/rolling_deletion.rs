//! `rolling_deletion`: frees a store of the available instances older than
//! `age_in_days` whose file enough peers hold. With
//! `verify_downstream_checksums` the copies are counted from the peers' own
//! `validate/file` answers (see `downstream`), otherwise from the remote-instance
//! records. The deleted instance is marked unavailable (`mark_unavailable`) or its
//! record removed.
//!
//! Invariants, stricter than the reference Librarian's:
//! - a downstream checksum mismatch, or a peer that cannot be asked, always keeps
//!   the local copy;
//! - a copy whose deletion policy is DISALLOWED is left alone unless
//!   `force_deletion`;
//! - the last copy is never deleted: at least one verified remote copy, or another
//!   available local copy, must remain whatever `number_of_remote_copies` says;
//! - the record stops pointing at the bytes (unavailable) before they are removed,
//!   so a crash never leaves an "available" instance without bytes.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::TaskContext;
use super::downstream::{Answer, Downstream};
use super::store_watch;
use crate::config::tasks::RollingDeletion;
use crate::db::DbError;
use crate::db::repo::{files, instances};
use crate::model::{DeletionPolicy, File, Instance, Timestamp};
use crate::node::Node;
use crate::store::Store;
use crate::store::durable::remove_in;

/// Runs one pass over the store.
pub fn run(context: &TaskContext, settings: &RollingDeletion) -> anyhow::Result<()> {
    let node = context.node();
    let store = node
        .stores
        .by_name(&settings.store_name)
        .cloned()
        .with_context(|| {
            format!(
                "there is no store named '{}'; fix store_name in the task's configuration",
                settings.store_name
            )
        })?;
    if !store_watch::check_available(node, &store)? {
        anyhow::bail!("store '{}' is unavailable; nothing was deleted", store.name);
    }
    let cutoff = Timestamp::days_ago(settings.age_in_days);
    let candidates = select(node, &store, cutoff)?;
    let mut downstream = Downstream::new(context);
    for (file, instance) in candidates {
        if !context.keep_going() {
            break;
        }
        if instance.deletion_policy == DeletionPolicy::Disallowed && !settings.force_deletion {
            tracing::debug!(file = %file.name, "deletion policy forbids deleting this copy");
            continue;
        }
        if !enough_copies(context, &mut downstream, settings, &file, &instance)? {
            continue;
        }
        delete(context, &store, &instance, settings.mark_unavailable)?;
    }
    Ok(())
}

/// The store's available instances created before `cutoff`, with their files.
fn select(node: &Node, store: &Store, cutoff: Timestamp) -> Result<Vec<(File, Instance)>, DbError> {
    node.db.read(|tx| {
        let mut found = Vec::new();
        for id in instances::ids_of_store(tx, store.id)? {
            let Some(instance) = instances::get_instance(tx, id)? else {
                continue;
            };
            if !instance.available || instance.created_time >= cutoff {
                continue;
            }
            if let Some(file) = files::get_file(tx, &instance.file_name)? {
                found.push((file, instance));
            }
        }
        Ok(found)
    })
}

/// Whether enough other copies exist for `instance` to go. Reports a mismatch, and
/// the first failure to reach each peer, as failed items.
fn enough_copies(
    context: &TaskContext,
    downstream: &mut Downstream,
    settings: &RollingDeletion,
    file: &File,
    instance: &Instance,
) -> anyhow::Result<bool> {
    let node = context.node();
    let own_name = &node.config.name;
    let (remotes, locals) = node.db.read(|tx| {
        Ok((
            instances::remotes_of_file(tx, &file.name)?,
            instances::of_file(tx, &file.name)?,
        ))
    })?;
    let away = node.stores.away_ids();
    let other_local = locals
        .iter()
        .filter(|i| i.id != instance.id && i.available && !away.contains(&i.store_id))
        .count();
    let remote_copies = if settings.verify_downstream_checksums {
        let holders: BTreeSet<String> = remotes
            .iter()
            .map(|r| r.librarian_name.clone())
            .filter(|name| name != own_name)
            .collect();
        let holders: Vec<String> = holders.into_iter().collect();
        match downstream.check(file, &holders) {
            Answer::Verified(count) => count,
            Answer::Mismatch { librarian, detail } => {
                context.item_failed(format!(
                    "kept '{}': librarian '{librarian}' reports a bad copy ({detail})",
                    file.name
                ));
                return Ok(false);
            }
            Answer::Unanswered {
                librarian,
                error,
                first,
            } => {
                if first {
                    context.item_failed(format!(
                        "kept '{}' (and every file '{librarian}' holds, for this run): cannot \
                         verify its copies there: {error}",
                        file.name
                    ));
                }
                return Ok(false);
            }
        }
    } else {
        remotes
            .iter()
            .filter(|r| r.librarian_name != *own_name)
            .map(|r| (r.librarian_name.as_str(), r.store_id))
            .collect::<BTreeSet<_>>()
            .len()
    };
    let enough =
        remote_copies >= settings.number_of_remote_copies && remote_copies + other_local >= 1;
    if !enough {
        tracing::debug!(file = %file.name, remote_copies, other_local,
            wanted = settings.number_of_remote_copies, "not enough copies elsewhere; kept");
    }
    Ok(enough)
}

/// Marks the instance unavailable, removes its bytes, and (unless
/// `mark_unavailable`) removes its record.
fn delete(
    context: &TaskContext,
    store: &Arc<Store>,
    instance: &Instance,
    mark_unavailable: bool,
) -> anyhow::Result<()> {
    let node = context.node();
    let Some(relative) = store.relative_path(Path::new(&instance.path)) else {
        context.item_failed(format!(
            "kept instance {}: its path {} is not inside store '{}'",
            instance.id, instance.path, store.name
        ));
        return Ok(());
    };
    let id = instance.id;
    let marked = node.db.write_blocking(move |txn| {
        let Some(mut current) = instances::get_instance(txn, id)? else {
            return Ok(Ok::<_, DbError>(false));
        };
        if !current.available {
            return Ok(Ok(false));
        }
        current.available = false;
        instances::put_instance(txn, &current)?;
        Ok(Ok(true))
    })?;
    if !marked {
        return Ok(());
    }
    // Reached from the store's root symlink-free: a link planted on the way is
    // refused, and a link at the path is removed itself, never followed.
    if let Err(error) = store.root_dir().and_then(|root| remove_in(&root, relative)) {
        context.item_failed(format!(
            "instance {} of '{}' is marked unavailable, but its bytes at {} could not be \
             removed: {error}",
            instance.id, instance.file_name, instance.path
        ));
        return Ok(());
    }
    if !mark_unavailable {
        let instance = instance.clone();
        node.db.write_blocking(move |txn| {
            if instances::get_instance(txn, instance.id)?.is_some() {
                instances::delete_instance(txn, &instance)?;
            }
            Ok(Ok::<_, DbError>(()))
        })?;
    }
    tracing::info!(file = %instance.file_name, instance = instance.id, "rolling deletion removed a local copy");
    context.item_done();
    Ok(())
}
