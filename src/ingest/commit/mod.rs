//! `upload/commit` and `upload/batch_commit`: verify staged bytes, move them into the
//! store durably, and record files and instances.
//!
//! Order of a commit (each step durable before the next):
//! 1. verify size and checksum (from the digests taken while the bytes arrived, or
//!    by hashing the staged data once);
//! 2. sync the staged data, rename it into the store without replacing anything,
//!    sync the parent directory;
//! 3. commit File + Instance + transfer COMPLETED in one database transaction;
//! 4. remove the now-empty staging directory (or give a single upload's back to
//!    its store, to be lent to the next one).
//!
//! A batch does each step for all its items together, so durability is paid per
//! batch. A crash between 2 and 3 leaves bytes in the store that no record points
//! at; start-up recovery moves them back into staging (see `node::recovery`).

mod clones;
mod record;
pub(crate) mod verify;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::IngestError;
use super::leftovers::remove_empty_parents;
use super::transfer_state::{
    discard_staging_of, fail_in, give_back_staging, remove_emptied_staging,
};
use crate::db::repo::{callbacks, files, transfers};
use crate::fsroot::{Dir, refusal};
use crate::model::{CallbackKind, DeletionPolicy, IncomingTransfer, TransferStatus};
use crate::node::{Claim, Node};
use crate::store::{StagedEntry, Store, changed};
use record::{Placed, record_all};
use verify::verify_all;

pub use clones::{CloneCommit, commit_staged_clones};

/// What a client asks to commit.
#[derive(Debug, Clone)]
pub struct CommitInput {
    pub caller: String,
    pub transfer_id: u64,
    pub store_name: String,
    pub staging_name: String,
    pub upload_name: String,
    pub destination_location: String,
    pub deletion_policy: DeletionPolicy,
}

/// An upload that passed the request checks.
struct Prepared {
    transfer: IncomingTransfer,
    store: Arc<Store>,
    /// The staged data, relative to the store's staging area.
    staged: PathBuf,
    deletion_policy: DeletionPolicy,
}

/// Commits one staged upload.
pub async fn commit_upload(node: &Arc<Node>, input: CommitInput) -> Result<(), IngestError> {
    commit_uploads(node, vec![input])
        .await?
        .pop()
        .expect("one result per input")
}

/// Commits many staged uploads; each gets its own result. Uploads refused for good
/// (wrong bytes, data missing, name taken) have their transfer failed and their
/// staging removed.
///
/// The commit runs in a task of its own and finishes even if the caller goes
/// away: a request dropped between the rename into the store and the record
/// would leave bytes there that no record points at until the next start-up,
/// and the client's retry would be refused as a taken name.
pub async fn commit_uploads(
    node: &Arc<Node>,
    inputs: Vec<CommitInput>,
) -> Result<Vec<Result<(), IngestError>>, IngestError> {
    let node = node.clone();
    tokio::spawn(async move { commit_uploads_to_the_end(&node, inputs).await }).await?
}

async fn commit_uploads_to_the_end(
    node: &Arc<Node>,
    inputs: Vec<CommitInput>,
) -> Result<Vec<Result<(), IngestError>>, IngestError> {
    let mut outcome = Outcome::new(inputs.len());
    let ids: Vec<u64> = inputs.iter().map(|i| i.transfer_id).collect();
    let transfers = node.db.read(|tx| transfers::get_incoming_many(tx, &ids))?;
    let mut prepared = Vec::new();
    for (index, (input, transfer)) in inputs.into_iter().zip(transfers).enumerate() {
        match prepare(node, &input, transfer) {
            Ok(item) => prepared.push((index, item)),
            Err(error) => outcome.answer(index, Err(error)),
        }
    }
    commit_prepared(node, prepared, &mut outcome).await?;
    outcome.close_refused(node).await?;
    Ok(outcome.finish())
}

/// Verifies, places and records prepared items; refusals and answers go to
/// `outcome`.
async fn commit_prepared(
    node: &Arc<Node>,
    prepared: Vec<(usize, Prepared)>,
    outcome: &mut Outcome,
) -> Result<(), IngestError> {
    // Verifying, checking names and placing run as one blocking job: for a small
    // upload each is a few system calls, and a hop between threads costs as much.
    let worker = node.clone();
    let collecting = std::mem::replace(outcome, Outcome::new(0));
    let (collected, placed, claim) =
        tokio::task::spawn_blocking(move || verify_and_place(&worker, prepared, collecting))
            .await??;
    *outcome = collected;
    record_placed(node, placed, outcome, &claim).await?;
    Ok(())
}

/// Verifies prepared items, claims their names, refuses those whose name is taken
/// or nests with a stored file, and moves the rest into their stores durably; the
/// claim is held until the caller has recorded them or taken them back. Blocking.
fn verify_and_place(
    node: &Arc<Node>,
    prepared: Vec<(usize, Prepared)>,
    mut outcome: Outcome,
) -> Result<(Outcome, Vec<InPlace>, Arc<Claim>), IngestError> {
    // Each store's staging area, opened once: staged data is reached from it
    // symlink-free.
    let mut staging_roots: HashMap<u64, Dir> = HashMap::new();
    let mut reachable = Vec::with_capacity(prepared.len());
    for (index, item) in prepared {
        if let std::collections::hash_map::Entry::Vacant(vacant) =
            staging_roots.entry(item.store.id)
        {
            match item.store.staging_root() {
                Ok(root) => {
                    vacant.insert(root);
                }
                Err(e) => {
                    let error = IngestError::io("cannot open the staging area", e);
                    outcome.answer(index, Err(error));
                    continue;
                }
            }
        }
        reachable.push((index, item));
    }
    let verifications = {
        let items: Vec<(&IncomingTransfer, &Dir, &std::path::Path)> = reachable
            .iter()
            .map(|(_, p)| (&p.transfer, &staging_roots[&p.store.id], p.staged.as_path()))
            .collect();
        verify_all(node, &items)
    };
    let mut verified = Vec::new();
    for ((index, item), result) in reachable.into_iter().zip(verifications) {
        match result {
            Ok((digests, entry)) => verified.push((index, item, digests, entry)),
            Err(error) => outcome.refuse(index, &item, error),
        }
    }
    // Claimed until recorded or taken back: nothing nested is placed meanwhile.
    let (claim, verified) = claim_names(node, verified, &mut outcome);
    let obstacles = node.db.read(|tx| {
        let names: Vec<&str> = verified
            .iter()
            .map(|(_, item, _, _)| item.transfer.destination_location.as_str())
            .collect();
        files::obstacles(tx, &names)
    })?;
    let mut to_place = Vec::new();
    for ((index, item, digests, entry), obstacle) in verified.into_iter().zip(obstacles) {
        match obstacle {
            Some(obstacle) => {
                let name = &item.transfer.destination_location;
                outcome.refuse(index, &item, IngestError::obstacle(name, obstacle));
            }
            None => to_place.push((index, item, digests, entry)),
        }
    }
    let placed = place_all(node, to_place, &mut outcome, &claim)?;
    Ok((outcome, placed, claim))
}

type Verified = (usize, Prepared, crate::checksum::Digests, StagedEntry);

/// Claims the names of verified items; an item whose name nests with one being
/// placed now (by another request, or earlier in this one) is answered busy, and
/// its transfer stays live so that the commit can be retried.
fn claim_names(
    node: &Node,
    verified: Vec<Verified>,
    outcome: &mut Outcome,
) -> (Arc<Claim>, Vec<Verified>) {
    let names: Vec<&str> = verified
        .iter()
        .map(|(_, item, _, _)| item.transfer.destination_location.as_str())
        .collect();
    let (claim, answers) = node.claims.claim(&names, "an upload");
    let mut claimed = Vec::with_capacity(verified.len());
    for (entry, answer) in verified.into_iter().zip(answers) {
        match answer {
            Ok(()) => claimed.push(entry),
            Err(busy) => {
                let by = if claim.holds(&busy.other) {
                    "this same request"
                } else {
                    busy.by
                };
                let name = entry.1.transfer.destination_location.clone();
                let other = busy.other;
                outcome.answer(entry.0, Err(IngestError::NameBusy { name, other, by }));
            }
        }
    }
    (Arc::new(claim), claimed)
}

/// Results being collected, plus the transfers to fail and the staging to remove.
struct Outcome {
    results: Vec<Option<Result<(), IngestError>>>,
    refused: Vec<u64>,
    completed: Vec<IncomingTransfer>,
}

impl Outcome {
    fn new(size: usize) -> Outcome {
        Outcome {
            results: (0..size).map(|_| None).collect(),
            refused: Vec::new(),
            completed: Vec::new(),
        }
    }

    fn answer(&mut self, index: usize, result: Result<(), IngestError>) {
        self.results[index] = Some(result);
    }

    /// Refuses an item for good: its transfer will be failed and staging removed.
    fn refuse(&mut self, index: usize, item: &Prepared, error: IngestError) {
        self.refuse_transfer(index, item.transfer.id, error);
    }

    /// Refuses the transfer `id` for good.
    fn refuse_transfer(&mut self, index: usize, id: u64, error: IngestError) {
        self.refused.push(id);
        self.answer(index, Err(error));
    }

    /// Fails the refused transfers in one transaction, then removes the staging of
    /// refused and completed transfers. A failed clone owes its source a callback,
    /// recorded in the same transaction.
    async fn close_refused(&mut self, node: &Arc<Node>) -> Result<(), IngestError> {
        let ids = std::mem::take(&mut self.refused);
        let mut completed = std::mem::take(&mut self.completed);
        // Completed transfers release their reserved room; refused ones release
        // theirs with their staging.
        node.reservations
            .release_transfers(completed.iter().map(|t| t.id));
        // Directories lent to one upload go back to their store without any I/O.
        completed.retain(|transfer| !give_back_staging(node, transfer));
        let mut refused = Vec::new();
        if !ids.is_empty() {
            let failed = node
                .db
                .write(move |txn| {
                    let mut failed = Vec::new();
                    for id in ids {
                        let Some(transfer) = fail_in(txn, id)? else {
                            continue;
                        };
                        if transfer.source_transfer_id.is_some() {
                            callbacks::owe(txn, transfer.id, CallbackKind::Fail)?;
                        }
                        failed.push(transfer);
                    }
                    Ok(Ok::<_, IngestError>(failed))
                })
                .await?;
            refused = failed;
        }
        if !(refused.is_empty() && completed.is_empty()) {
            let node = node.clone();
            tokio::task::spawn_blocking(move || {
                discard_staging_of(&node, &refused);
                remove_emptied_staging(&node, &completed);
            })
            .await?;
        }
        Ok(())
    }

    fn finish(self) -> Vec<Result<(), IngestError>> {
        self.results
            .into_iter()
            .map(|r| r.expect("every input has a result"))
            .collect()
    }
}

/// Checks a commit request against its transfer.
fn prepare(
    node: &Node,
    input: &CommitInput,
    transfer: Option<IncomingTransfer>,
) -> Result<Prepared, IngestError> {
    let id = input.transfer_id;
    let transfer = transfer.ok_or(IngestError::TransferNotFound(id))?;
    if transfer.source != input.caller {
        return Err(IngestError::NotYourTransfer(id));
    }
    match transfer.status {
        TransferStatus::Completed => {
            return Err(IngestError::NameTaken(transfer.destination_location));
        }
        status if status.is_terminal() => return Err(IngestError::TransferClosed { id, status }),
        _ => {}
    }
    let store = node
        .stores
        .by_id(transfer.store_id)
        .cloned()
        .ok_or_else(|| IngestError::StoreDisabled(format!("#{}", transfer.store_id)))?;
    check_request_matches(input, &transfer, &store)?;
    if !store.enabled() {
        return Err(IngestError::StoreDisabled(store.name.clone()));
    }
    if store.staging_dir(&transfer.staging_name).is_none() {
        return Err(IngestError::StagedDataMissing(id));
    }
    let staged = Path::new(&transfer.staging_name).join(&transfer.upload_name);
    Ok(Prepared {
        transfer,
        store,
        staged,
        deletion_policy: input.deletion_policy,
    })
}

fn check_request_matches(
    input: &CommitInput,
    transfer: &IncomingTransfer,
    store: &Store,
) -> Result<(), IngestError> {
    let mismatch = [
        ("store_name", &input.store_name, &store.name),
        ("staging_name", &input.staging_name, &transfer.staging_name),
        ("upload_name", &input.upload_name, &transfer.upload_name),
        (
            "destination_location",
            &input.destination_location,
            &transfer.destination_location,
        ),
    ]
    .into_iter()
    .find(|(_, given, recorded)| given != recorded);
    match mismatch {
        Some((field, given, recorded)) => Err(IngestError::WrongTransferDetails {
            id: transfer.id,
            detail: format!("{field} is '{given}', but the transfer was staged with '{recorded}'"),
        }),
        None => Ok(()),
    }
}

/// An item in the store, not yet recorded.
struct InPlace {
    index: usize,
    item: Prepared,
    placed: Placed,
}

/// Moves verified items into their stores, one durable batch per store. A name
/// found occupied (or reached through a link planted in the store) is refused
/// with what is in its way; staged data that changed after it was verified is
/// refused as a mismatch; the directories a failed item created are removed.
/// Blocking.
fn place_all(
    node: &Node,
    to_place: Vec<(usize, Prepared, crate::checksum::Digests, StagedEntry)>,
    outcome: &mut Outcome,
    claim: &Claim,
) -> Result<Vec<InPlace>, IngestError> {
    let mut by_store: HashMap<u64, Vec<(usize, Prepared, crate::checksum::Digests, StagedEntry)>> =
        HashMap::new();
    for entry in to_place {
        by_store.entry(entry.1.store.id).or_default().push(entry);
    }
    let mut in_place = Vec::new();
    for (_, group) in by_store {
        let store = group[0].1.store.clone();
        let mut items = Vec::with_capacity(group.len());
        let mut rest = Vec::with_capacity(group.len());
        for (index, item, digests, entry) in group {
            items.push((entry, item.transfer.destination_location.clone()));
            rest.push((index, item, digests));
        }
        let placed = store.commit_many(items);
        for ((_, item, _), result) in rest.iter().zip(&placed) {
            if result
                .as_ref()
                .is_err_and(|e| e.kind() != ErrorKind::AlreadyExists)
            {
                let name = &item.transfer.destination_location;
                remove_empty_parents(node, &store, name, claim);
            }
        }
        for ((index, item, digests), result) in rest.into_iter().zip(placed) {
            match result {
                Ok(target) => {
                    let placed = Placed {
                        transfer: item.transfer.clone(),
                        digests,
                        target,
                        deletion_policy: item.deletion_policy,
                    };
                    in_place.push(InPlace {
                        index,
                        item,
                        placed,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let error = occupied(node, &item)?;
                    outcome.refuse(index, &item, error);
                }
                Err(e) if refusal(&e).is_some() => {
                    let error = IngestError::OccupiedOnDisk {
                        name: item.transfer.destination_location.clone(),
                        store: item.store.name.clone(),
                    };
                    tracing::warn!(name = %item.transfer.destination_location, store = %item.store.name, error = %e, "an upload was not placed: its path in the store is not plain");
                    outcome.refuse(index, &item, error);
                }
                Err(e) if changed(&e) => {
                    let error = IngestError::Mismatch {
                        expected: "the staged data that was verified".into(),
                        found: e.to_string(),
                    };
                    outcome.refuse(index, &item, error);
                }
                Err(e) => outcome.answer(
                    index,
                    Err(IngestError::io("cannot move the upload into the store", e)),
                ),
            }
        }
    }
    Ok(in_place)
}

/// Why an item's name was found occupied in its store: the recorded file in its
/// way, or something no record describes.
fn occupied(node: &Node, item: &Prepared) -> Result<IngestError, IngestError> {
    let name = &item.transfer.destination_location;
    let obstacle = node.db.read(|tx| files::obstacle(tx, name))?;
    Ok(match obstacle {
        Some(obstacle) => IngestError::obstacle(name, obstacle),
        None => IngestError::OccupiedOnDisk {
            name: name.clone(),
            store: item.store.name.clone(),
        },
    })
}

/// Records placed items in one transaction. Items the database refuses, or all of
/// them if the transaction fails, go back to staging so that nothing unrecorded
/// stays in a store.
async fn record_placed(
    node: &Arc<Node>,
    in_place: Vec<InPlace>,
    outcome: &mut Outcome,
    claim: &Arc<Claim>,
) -> Result<(), IngestError> {
    if in_place.is_empty() {
        return Ok(());
    }
    let placed: Vec<&Placed> = in_place.iter().map(|p| &p.placed).collect();
    let recorded = record_all(node, &placed).await;
    let results = match recorded {
        Ok(results) => results,
        Err(error) => {
            unplace(node, in_place.iter().map(|p| &p.item), claim).await;
            return Err(error);
        }
    };
    let mut undo = Vec::new();
    for (entry, result) in in_place.iter().zip(results) {
        match result {
            Ok(()) => {
                outcome.completed.push(entry.item.transfer.clone());
                outcome.answer(entry.index, Ok(()));
            }
            Err(error) => {
                undo.push(&entry.item);
                outcome.refuse(entry.index, &entry.item, error);
            }
        }
    }
    unplace(node, undo.into_iter(), claim).await;
    Ok(())
}

/// Moves placed-but-unrecorded items back into their staging, and removes the
/// directories they leave empty.
async fn unplace<'a>(
    node: &Arc<Node>,
    items: impl Iterator<Item = &'a Prepared>,
    claim: &Arc<Claim>,
) {
    let work: Vec<(Arc<Store>, String, PathBuf)> = items
        .map(|i| {
            (
                i.store.clone(),
                i.transfer.destination_location.clone(),
                i.staged.clone(),
            )
        })
        .collect();
    if work.is_empty() {
        return;
    }
    let (node, claim) = (node.clone(), claim.clone());
    let _ = tokio::task::spawn_blocking(move || {
        for (store, name, staged) in work {
            match store.uncommit(&name, &staged) {
                Ok(()) => remove_empty_parents(&node, &store, &name, &claim),
                Err(error) => {
                    tracing::error!(%name, %error, "cannot move an unrecorded upload back to staging")
                }
            }
        }
    })
    .await;
}
