//! `corruption_fixer`: replaces corrupt copies with new ones from the librarian
//! each file came from (its `source`), as the reference does.
//!
//! For each corrupt-file record without a repair under way: the copy is hashed
//! afresh (a match clears the record: it was fixed meanwhile); a file with other
//! copies here is left for an operator (as the reference does); otherwise the
//! source is asked `corrupt/prepare`, and once it is ready this node forgets the
//! file (record, instances, remote instances) and records the repair in one
//! transaction, removes the bad bytes, and asks `corrupt/resend`. The repair then
//! follows the incoming transfer the source named: COMPLETED (or the file is back)
//! ends it and clears the record; FAILED or CANCELLED asks again on the next run.
//!
//! Invariant: a file is forgotten only after its source said it can send a good
//! copy, and the repair is recorded in that same transaction, so a crash or a
//! failed resend is asked again, never forgotten.

use std::path::Path;
use std::time::Duration;

use super::TaskContext;
use crate::config::tasks::CorruptionFixer;
use crate::db::DbError;
use crate::db::repo::instances::{self, Repair};
use crate::db::repo::{files, librarians, transfers};
use crate::integrity;
use crate::model::{CorruptFile, Instance, Timestamp, TransferStatus};
use crate::peer::LibrarianClient;
use crate::peer::registry::client_for_peer;
use crate::protocol::corrupt::{CorruptionPreparationRequest, CorruptionResendRequest};

/// Runs one pass over the corrupt-file records.
pub fn run(context: &TaskContext, _settings: &CorruptionFixer) -> anyhow::Result<()> {
    let node = context.node();
    let records = node.db.read(instances::all_corrupt)?;
    for record in records {
        if !context.keep_going() {
            break;
        }
        match node.db.read(|tx| instances::repair_of(tx, record.id))? {
            Some(repair) => match repair.transfer {
                Some(transfer) => follow(context, &record, repair.clone(), transfer)?,
                None => ask_resend(context, &record, repair)?,
            },
            None => start(context, &record)?,
        }
    }
    Ok(())
}

/// A corrupt copy with no repair under way.
fn start(context: &TaskContext, record: &CorruptFile) -> anyhow::Result<()> {
    let node = context.node();
    let name = record.file_name.as_str();
    let (file, copies) = node
        .db
        .read(|tx| Ok((files::get_file(tx, name)?, instances::of_file(tx, name)?)))?;
    let Some(file) = file else {
        context.item_failed(format!(
            "{name} was found corrupt but is no longer recorded here; nothing to repair"
        ));
        let id = record.id;
        node.db.write_blocking(move |txn| {
            instances::delete_corrupt(txn, id)?;
            Ok(Ok::<_, DbError>(()))
        })?;
        return Ok(());
    };
    let Some(instance) = copies.iter().find(|i| i.id == record.instance_id) else {
        // The corrupt copy itself was removed (by an operator): nothing to repair,
        // and the other copies are not touched.
        let id = record.id;
        node.db.write_blocking(move |txn| {
            instances::delete_corrupt(txn, id)?;
            Ok(Ok::<_, DbError>(()))
        })?;
        tracing::info!(file = %name, "the corrupt copy is gone; its record is cleared");
        context.item_done();
        return Ok(());
    };
    if !node.stores.is_here(instance.store_id) {
        tracing::info!(file = %name, "the corrupt copy's store is away; the repair waits");
        return Ok(());
    }
    let outcome = integrity::verify_instance(&node.stores, &file, instance, Duration::ZERO);
    if outcome.current.is_none() && !is_missing(node, instance) {
        // Unreadable for another reason (I/O error, permissions): not proof of
        // corruption; asked again on the next run.
        context.item_failed(format!(
            "cannot read the copy of {name} found corrupt: {}",
            outcome.problem.clone().unwrap_or_default()
        ));
        return Ok(());
    }
    integrity::record_outcome(&node.db, &file, &outcome, context.task_name())?;
    if outcome.matches {
        tracing::info!(file = %name, "the copy found corrupt matches its record again");
        context.item_done();
        return Ok(());
    }
    if copies.len() > 1 {
        context.item_failed(format!(
            "{name} has {} copies here and one is corrupt; remove the corrupt instance \
             (admin/instance/delete_local) and let another copy stand",
            copies.len()
        ));
        return Ok(());
    }
    let source = file.source.clone();
    let Some(client) = client_of(context, &source, name)? else {
        return Ok(());
    };
    let request = CorruptionPreparationRequest {
        file_name: name.to_string(),
        librarian_name: node.config.name.clone(),
    };
    match context.block_on(client.corrupt_prepare(&request)) {
        Ok(answer) if answer.ready => {}
        Ok(_) => {
            context.item_failed(format!("{source} is not ready to send {name} again"));
            return Ok(());
        }
        Err(error) => {
            context.item_failed(format!("{source} cannot send {name} again: {error}"));
            return Ok(());
        }
    }
    let repair = Repair {
        since: Timestamp::now(),
        transfer: None,
        source,
    };
    forget_copy(context, record, &file, copies, &repair)?;
    ask_resend(context, record, repair)
}

/// Whether `instance`'s bytes are simply gone from its store (a lost copy, to be
/// replaced like a corrupt one).
fn is_missing(node: &crate::node::Node, instance: &Instance) -> bool {
    let Some(store) = node.stores.by_id(instance.store_id) else {
        return false;
    };
    let Some(relative) = store.relative_path(Path::new(&instance.path)) else {
        return false;
    };
    matches!(
        store.root_dir().and_then(|root| root.try_stat(relative)),
        Ok(None)
    )
}

/// Removes bytes left at `<store root>/<name>` in every store by a repair whose
/// removal failed or was cut short: the name has no record, so they are nobody's,
/// and the new copy could not be stored over them.
fn remove_leftovers(node: &crate::node::Node, name: &str) {
    for store in node.stores.all() {
        let removed = store
            .root_dir()
            .and_then(|root| crate::store::durable::remove_in(&root, Path::new(name)));
        if let Err(error) = removed {
            tracing::warn!(store = %store.name, file = %name, %error,
                "cannot remove what is left of a corrupt copy");
        }
    }
}

/// The client of the librarian `source`, or `None` (said why) when it is not a
/// known peer or does not answer.
fn client_of(
    context: &TaskContext,
    source: &str,
    name: &str,
) -> anyhow::Result<Option<LibrarianClient>> {
    let node = context.node();
    let Some(peer) = node.db.read(|tx| librarians::get_librarian(tx, source))? else {
        context.item_failed(format!(
            "{name} is corrupt and came from '{source}', which is not a known librarian; \
             add it as a peer to have the file sent again"
        ));
        return Ok(None);
    };
    let client = match client_for_peer(node, &peer) {
        Ok(client) => client,
        Err(error) => {
            context.item_failed(format!("cannot ask {source} for {name}: {error}"));
            return Ok(None);
        }
    };
    if let Err(error) = context.block_on(client.ping()) {
        tracing::info!(%source, file = %name, %error, "source unreachable; the repair waits");
        return Ok(None);
    }
    Ok(Some(client))
}

/// Forgets the file and records the repair in one transaction, then removes the
/// bad bytes from the store.
fn forget_copy(
    context: &TaskContext,
    record: &CorruptFile,
    file: &crate::model::File,
    copies: Vec<Instance>,
    repair: &Repair,
) -> Result<(), DbError> {
    let node = context.node();
    let (file, id, repair) = (file.clone(), record.id, repair.clone());
    let removed = copies.clone();
    node.db.write_blocking(move |txn| {
        for instance in &removed {
            instances::delete_instance(txn, instance)?;
        }
        for remote in instances::remotes_of_file(txn, &file.name)? {
            instances::delete_remote(txn, &remote)?;
        }
        files::remove(txn, &file)?;
        instances::put_repair(txn, id, &repair)?;
        Ok(Ok::<_, DbError>(()))
    })?;
    for instance in copies {
        let Some(store) = node.stores.by_id(instance.store_id) else {
            continue;
        };
        let Some(relative) = store.relative_path(Path::new(&instance.path)) else {
            continue;
        };
        let removed = store
            .root_dir()
            .and_then(|root| crate::store::durable::remove_in(&root, relative));
        if let Err(error) = removed {
            tracing::warn!(path = %instance.path, %error, "cannot remove the corrupt copy");
        }
    }
    tracing::info!(file = %record.file_name, source = %repair_source(node, record.id),
        "corrupt copy given up; a new one is asked for");
    Ok(())
}

fn repair_source(node: &crate::node::Node, id: u64) -> String {
    node.db
        .read(|tx| instances::repair_of(tx, id))
        .ok()
        .flatten()
        .map(|r| r.source)
        .unwrap_or_default()
}

/// Asks the source to send the file again and records the transfer it names.
fn ask_resend(context: &TaskContext, record: &CorruptFile, repair: Repair) -> anyhow::Result<()> {
    let node = context.node();
    let name = record.file_name.as_str();
    if node.db.read(|tx| files::get_file(tx, name))?.is_some() {
        // The name was taken again meanwhile (an upload): that file is not ours
        // to replace; the repair ends.
        let id = record.id;
        node.db.write_blocking(move |txn| {
            instances::delete_corrupt(txn, id)?;
            instances::delete_repair(txn, id)?;
            Ok(Ok::<_, DbError>(()))
        })?;
        context.item_failed(format!(
            "{name} was recorded again while its corrupt copy was being replaced; the \
             repair ends, validate the new record"
        ));
        return Ok(());
    }
    remove_leftovers(node, name);
    let Some(client) = client_of(context, &repair.source, name)? else {
        return Ok(());
    };
    let request = CorruptionResendRequest {
        librarian_name: node.config.name.clone(),
        file_name: name.to_string(),
    };
    let answer = match context.block_on(client.corrupt_resend(&request)) {
        Ok(answer) if answer.success => answer,
        Ok(_) => {
            context.item_failed(format!("{} did not resend {name}", repair.source));
            return Ok(());
        }
        Err(error) => {
            context.item_failed(format!(
                "{} cannot resend {name} (asked again on the next run): {error}",
                repair.source
            ));
            return Ok(());
        }
    };
    let (id, mut repair) = (record.id, repair);
    repair.transfer = u64::try_from(answer.destination_transfer_id).ok();
    node.db.write_blocking(move |txn| {
        instances::put_repair(txn, id, &repair)?;
        Ok(Ok::<_, DbError>(()))
    })?;
    tracing::info!(file = %name, transfer = answer.destination_transfer_id, "new copy on its way");
    context.item_done();
    Ok(())
}

/// A repair whose new copy travels with incoming transfer `transfer`.
fn follow(
    context: &TaskContext,
    record: &CorruptFile,
    repair: Repair,
    transfer: u64,
) -> anyhow::Result<()> {
    let node = context.node();
    let name = record.file_name.clone();
    let (status, back) = node.db.read(|tx| {
        Ok((
            transfers::get_incoming(tx, transfer)?.map(|t| t.status),
            files::get_file(tx, &name)?.is_some(),
        ))
    })?;
    let fixed = back || status == Some(TransferStatus::Completed);
    let failed = matches!(
        status,
        None | Some(TransferStatus::Failed) | Some(TransferStatus::Cancelled)
    );
    let id = record.id;
    if fixed {
        node.db.write_blocking(move |txn| {
            instances::delete_corrupt(txn, id)?;
            instances::delete_repair(txn, id)?;
            Ok(Ok::<_, DbError>(()))
        })?;
        tracing::info!(file = %name, "corrupt copy replaced");
        context.item_done();
    } else if failed {
        let mut again = repair;
        again.transfer = None;
        node.db.write_blocking(move |txn| {
            instances::put_repair(txn, id, &again)?;
            Ok(Ok::<_, DbError>(()))
        })?;
        context.item_failed(format!(
            "the new copy of {name} did not arrive (transfer {transfer}); asked again next run"
        ));
    }
    Ok(())
}
