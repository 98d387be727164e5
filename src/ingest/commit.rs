//! `upload/commit`: verify the staged bytes, move them into the store durably, and
//! record the file and its instance in one transaction.
//!
//! Order of a commit (each step durable before the next):
//! 1. verify size and checksum (from the digests taken while the bytes arrived, or
//!    by hashing the staged data once);
//! 2. sync the staged data, rename it into the store without replacing anything,
//!    sync the parent directory;
//! 3. commit File + Instance + transfer COMPLETED in one database transaction;
//! 4. remove the now-empty staging directory.
//!
//! A crash between 2 and 3 leaves bytes in the store that no record points at;
//! start-up recovery moves them back into staging (see `node::recovery`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::IngestError;
use super::transfer_state::{discard_staging, fail_and_discard};
use crate::checksum::{Digests, digest_path};
use crate::db::repo::{files, instances, next_id, transfers};
use crate::model::{
    Algorithm, DeletionPolicy, File, IncomingTransfer, Instance, Timestamp, TransferStatus,
};
use crate::node::Node;
use crate::store::Store;

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

/// Commits a staged upload.
pub async fn commit_upload(node: &Arc<Node>, input: CommitInput) -> Result<(), IngestError> {
    let id = input.transfer_id;
    let transfer = node
        .db
        .read(|tx| transfers::get_incoming(tx, id))?
        .ok_or(IngestError::TransferNotFound(id))?;
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
    check_request_matches(&input, &transfer, &store)?;
    if !store.enabled() {
        return Err(IngestError::StoreDisabled(store.name.clone()));
    }
    let staged = store
        .staging
        .join(&transfer.staging_name)
        .join(&transfer.upload_name);

    let digests = match verify(node, &transfer, &staged).await {
        Ok(digests) => digests,
        Err(error) => return Err(refuse(node, id, error).await),
    };
    let name = transfer.destination_location.clone();
    if node.db.read(|tx| files::exists(tx, &name))? {
        return Err(refuse(node, id, IngestError::NameTaken(name)).await);
    }
    let target = {
        let (store, staged, name) = (store.clone(), staged.clone(), name.clone());
        tokio::task::spawn_blocking(move || store.commit(&staged, &name)).await?
    };
    let target = match target {
        Ok(target) => target,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(refuse(node, id, IngestError::NameTaken(name)).await);
        }
        Err(e) => return Err(IngestError::io("cannot move the upload into the store", e)),
    };
    let recorded = record(node, &transfer, &digests, &target, input.deletion_policy).await;
    if let Err(error) = recorded {
        // The bytes are in the store but unrecorded: put them back so that nothing
        // unaccounted for stays in the store.
        let restored = {
            let (store, staged, name) = (store.clone(), staged.clone(), name.clone());
            tokio::task::spawn_blocking(move || store.uncommit(&name, &staged)).await?
        };
        if let Err(undo) = restored {
            tracing::error!(transfer = id, %undo, "cannot move unrecorded upload back to staging");
        }
        return Err(match error {
            IngestError::NameTaken(_) => refuse(node, id, error).await,
            other => other,
        });
    }
    discard_staging(node, &transfer);
    Ok(())
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

/// Fails the transfer for good and discards its staging, then hands back `error`.
async fn refuse(node: &Node, id: u64, error: IngestError) -> IngestError {
    if let Err(db_error) = fail_and_discard(node, id).await {
        return db_error.into();
    }
    error
}

/// The algorithms a transfer's verification needs (BLAKE3 is always added).
fn algorithms_for(transfer: &IncomingTransfer) -> Vec<Algorithm> {
    let mut algorithms = vec![transfer.transfer_checksum.algorithm];
    algorithms.extend(transfer.record_algorithm);
    algorithms
}

/// Checks the staged bytes against the transfer's size and checksum.
async fn verify(
    node: &Node,
    transfer: &IncomingTransfer,
    staged: &Path,
) -> Result<Digests, IngestError> {
    let algorithms = algorithms_for(transfer);
    let remembered = node
        .staged_digests
        .take(transfer.id)
        .filter(|d| d.still_describes(staged))
        .filter(|d| algorithms.iter().all(|a| d.digests.get(*a).is_some()));
    let digests = match remembered {
        Some(remembered) => remembered.digests,
        None => {
            let staged: PathBuf = staged.to_path_buf();
            let id = transfer.id;
            tokio::task::spawn_blocking(move || hash_staged(id, &staged, &algorithms)).await??
        }
    };
    let declared = &transfer.transfer_checksum;
    let found = digests
        .get(declared.algorithm)
        .expect("the declared algorithm is always computed");
    if digests.size != transfer.transfer_size || found != declared {
        return Err(IngestError::Mismatch {
            expected: format!("{} bytes with {declared}", transfer.transfer_size),
            found: format!("{} bytes with {found}", digests.size),
        });
    }
    Ok(digests)
}

fn hash_staged(id: u64, staged: &Path, algorithms: &[Algorithm]) -> Result<Digests, IngestError> {
    refuse_links(staged).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IngestError::StagedDataMissing(id),
        _ => IngestError::Mismatch {
            expected: "regular files and directories".into(),
            found: e.to_string(),
        },
    })?;
    digest_path(staged, algorithms).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IngestError::StagedDataMissing(id),
        _ => IngestError::io("cannot read the staged data", e),
    })
}

/// Staged data must be regular files and directories only: a symbolic link could
/// make the node read, and then store, something the client could not.
fn refuse_links(staged: &Path) -> std::io::Result<()> {
    std::fs::symlink_metadata(staged)?;
    for entry in walkdir::WalkDir::new(staged) {
        let entry = entry.map_err(std::io::Error::other)?;
        let kind = entry.file_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file or directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

/// Records File + Instance and completes the transfer, in one transaction.
async fn record(
    node: &Node,
    transfer: &IncomingTransfer,
    digests: &Digests,
    target: &Path,
    deletion_policy: DeletionPolicy,
) -> Result<(), IngestError> {
    let now = Timestamp::now();
    let checksum = match transfer.record_algorithm {
        Some(algorithm) => digests.get(algorithm).cloned().expect("computed above"),
        None => transfer.transfer_checksum.clone(),
    };
    let file = File {
        name: transfer.destination_location.clone(),
        create_time: now,
        size: transfer.transfer_size,
        checksum,
        uploader: transfer.uploader.clone(),
        source: transfer.source.clone(),
    };
    let mut instance = Instance {
        id: 0,
        file_name: file.name.clone(),
        store_id: transfer.store_id,
        path: target.to_string_lossy().into_owned(),
        deletion_policy,
        created_time: now,
        available: true,
        blake3: digests.blake3(),
        verified_time: now,
    };
    let id = transfer.id;
    node.db
        .write(move |txn| {
            let Some(mut transfer) = transfers::get_incoming(txn, id)? else {
                return Ok(Err(IngestError::TransferNotFound(id)));
            };
            if transfer.status.is_terminal() {
                let status = transfer.status;
                return Ok(Err(IngestError::TransferClosed { id, status }));
            }
            if files::exists(txn, &file.name)? {
                return Ok(Err(IngestError::NameTaken(file.name)));
            }
            files::insert(txn, &file)?;
            instance.id = next_id(txn, "instances")?;
            instances::put_instance(txn, &instance)?;
            transfer.status = TransferStatus::Completed;
            transfer.end_time = Some(now);
            transfers::put_incoming(txn, &transfer)?;
            Ok(Ok(()))
        })
        .await
}
