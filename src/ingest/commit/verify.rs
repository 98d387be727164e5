//! Verifying staged bytes against their transfer's declared size and checksum.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::checksum::{Digests, WORKER_THRESHOLD_BYTES, digest_open_file, digest_path};
use crate::ingest::IngestError;
use crate::model::{Algorithm, Checksum, IncomingTransfer};
use crate::node::Node;
use crate::store::durable::sync_tree;

/// The algorithms a transfer's verification needs (BLAKE3 is always added).
pub fn algorithms_for(transfer: &IncomingTransfer) -> Vec<Algorithm> {
    let mut algorithms = vec![transfer.transfer_checksum.algorithm];
    algorithms.extend(transfer.record_algorithm);
    algorithms
}

/// Checks staged bytes against each transfer's size and checksum. Digests taken
/// while the bytes streamed in are used when they still describe the file; large
/// items are hashed one by one, each while its data is flushed to disk; small
/// items are hashed together on one blocking thread.
pub async fn verify_all(
    node: &Node,
    items: &[(&IncomingTransfer, &Path)],
) -> Result<Vec<Result<Digests, IngestError>>, IngestError> {
    let mut results: Vec<Option<Result<Digests, IngestError>>> =
        (0..items.len()).map(|_| None).collect();
    let mut small = Vec::new();
    let mut large = Vec::new();
    for (index, (transfer, staged)) in items.iter().enumerate() {
        let algorithms = algorithms_for(transfer);
        let remembered = node
            .staged_digests
            .take(transfer.id)
            .filter(|d| d.still_describes(staged))
            .filter(|d| algorithms.iter().all(|a| d.digests.get(*a).is_some()));
        if let Some(remembered) = remembered {
            results[index] = Some(compare(transfer, remembered.digests));
        } else if transfer.transfer_size >= WORKER_THRESHOLD_BYTES {
            large.push(index);
        } else {
            small.push((index, transfer.id, staged.to_path_buf(), algorithms));
        }
    }
    if !small.is_empty() {
        let hashed = tokio::task::spawn_blocking(move || {
            small
                .into_iter()
                .map(|(index, id, staged, algorithms)| {
                    (index, hash_staged(id, &staged, &algorithms))
                })
                .collect::<Vec<_>>()
        })
        .await?;
        for (index, digests) in hashed {
            results[index] = Some(digests.and_then(|d| compare(items[index].0, d)));
        }
    }
    for index in large {
        let (transfer, staged) = items[index];
        results[index] = Some(verify_large(transfer, staged).await);
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every item verified"))
        .collect())
}

/// Hashes a large staged item while flushing it to disk, instead of after.
async fn verify_large(transfer: &IncomingTransfer, staged: &Path) -> Result<Digests, IngestError> {
    let syncing = {
        let staged = staged.to_path_buf();
        tokio::task::spawn_blocking(move || sync_tree(&staged))
    };
    let (id, staged, algorithms) = (transfer.id, staged.to_path_buf(), algorithms_for(transfer));
    let hashed = tokio::task::spawn_blocking(move || hash_staged(id, &staged, &algorithms)).await;
    // The commit syncs again, so a failure here only costs time.
    let _ = syncing.await;
    compare(transfer, hashed??)
}

/// Accepts digests that match the transfer's declared size and checksum.
pub(super) fn compare(
    transfer: &IncomingTransfer,
    digests: Digests,
) -> Result<Digests, IngestError> {
    matches_declared(transfer.transfer_size, &transfer.transfer_checksum, digests)
}

/// Accepts digests of exactly `size` bytes whose checksum is `declared`.
pub(crate) fn matches_declared(
    size: u64,
    declared: &Checksum,
    digests: Digests,
) -> Result<Digests, IngestError> {
    let found = digests
        .get(declared.algorithm)
        .expect("the declared algorithm is always computed");
    if digests.size != size || found != declared {
        return Err(IngestError::Mismatch {
            expected: format!("{size} bytes with {declared}"),
            found: format!("{} bytes with {found}", digests.size),
        });
    }
    Ok(digests)
}

/// Hashes staged data. A regular file is opened without following links and
/// hashed from that handle; a directory is first checked for links and special
/// files: a symbolic link could make the node read, and then store, something the
/// client could not.
fn hash_staged(id: u64, staged: &Path, algorithms: &[Algorithm]) -> Result<Digests, IngestError> {
    let missing_or = |e: std::io::Error, other: fn(std::io::Error) -> IngestError| match e.kind() {
        std::io::ErrorKind::NotFound => IngestError::StagedDataMissing(id),
        _ => other(e),
    };
    // O_NOFOLLOW: opening a symbolic link fails (ELOOP) instead of following it;
    // O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(staged)
        .map_err(|e| missing_or(e, not_regular))?;
    let metadata = file.metadata().map_err(|e| missing_or(e, unreadable))?;
    if metadata.is_file() {
        return digest_open_file(file, algorithms).map_err(|e| missing_or(e, unreadable));
    }
    drop(file);
    refuse_links(staged).map_err(|e| missing_or(e, not_regular))?;
    digest_path(staged, algorithms).map_err(|e| missing_or(e, unreadable))
}

fn not_regular(error: std::io::Error) -> IngestError {
    IngestError::Mismatch {
        expected: "regular files and directories".into(),
        found: error.to_string(),
    }
}

fn unreadable(error: std::io::Error) -> IngestError {
    IngestError::io("cannot read the staged data", error)
}

/// Fails unless a staged tree holds only regular files and directories.
fn refuse_links(staged: &Path) -> std::io::Result<()> {
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
