//! Verifying staged bytes against their transfer's declared size and checksum.

use std::path::Path;

use crate::checksum::{Digests, WORKER_THRESHOLD_BYTES, digest_opened};
use crate::fsroot::Dir;
use crate::ingest::IngestError;
use crate::model::{Algorithm, Checksum, IncomingTransfer};
use crate::node::Node;
use crate::store::StagedEntry;
use crate::store::durable::sync_opened;

/// The algorithms a transfer's verification needs (BLAKE3 is always added).
pub fn algorithms_for(transfer: &IncomingTransfer) -> Vec<Algorithm> {
    let mut algorithms = vec![transfer.transfer_checksum.algorithm];
    algorithms.extend(transfer.record_algorithm);
    algorithms
}

/// Checks staged data against each transfer's size and checksum; each item is
/// the staging area of its store and the data's path there. The data is opened
/// symlink-free and hashed through that handle, which the commit then renames
/// by (see `store::StagedEntry`). Digests taken while the bytes streamed in are
/// used when they still describe the opened file; other items are hashed one by
/// one, a large one while its data is flushed to disk on another thread.
/// Blocking.
pub fn verify_all(
    node: &Node,
    items: &[(&IncomingTransfer, &Dir, &Path)],
) -> Vec<Result<(Digests, StagedEntry), IngestError>> {
    items
        .iter()
        .map(|(transfer, staging, staged)| {
            let entry = open_staged(transfer.id, staging, staged)?;
            let algorithms = algorithms_for(transfer);
            let remembered = node
                .staged_digests
                .take(transfer.id)
                .filter(|d| d.still_describes(entry.meta()))
                .filter(|d| algorithms.iter().all(|a| d.digests.get(*a).is_some()));
            let digests = if let Some(remembered) = remembered {
                compare(transfer, remembered.digests)
            } else if transfer.transfer_size >= WORKER_THRESHOLD_BYTES {
                verify_large(transfer, &entry, &algorithms)
            } else {
                hash_staged(transfer.id, &entry, &algorithms).and_then(|d| compare(transfer, d))
            }?;
            Ok((digests, entry))
        })
        .collect()
}

/// Hashes a large staged item while flushing it to disk, instead of after.
fn verify_large(
    transfer: &IncomingTransfer,
    entry: &StagedEntry,
    algorithms: &[Algorithm],
) -> Result<Digests, IngestError> {
    std::thread::scope(|scope| {
        let syncing = scope.spawn(|| sync_opened(&entry.opened));
        let hashed = hash_staged(transfer.id, entry, algorithms);
        // The commit syncs again, so a failure here only costs time.
        let _ = syncing.join();
        compare(transfer, hashed?)
    })
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

/// Opens staged data symlink-free from the staging area: a symbolic link
/// anywhere on its path or in its tree, a FIFO, socket or device could make the
/// node read, and then store, something the client could not.
fn open_staged(id: u64, staging: &Dir, staged: &Path) -> Result<StagedEntry, IngestError> {
    StagedEntry::open(staging, staged).map_err(|e| missing_or(id, e))
}

/// Hashes staged data through the handle it was opened by.
fn hash_staged(
    id: u64,
    entry: &StagedEntry,
    algorithms: &[Algorithm],
) -> Result<Digests, IngestError> {
    let opened = entry
        .opened
        .try_clone()
        .map_err(|e| IngestError::io("cannot read the staged data", e))?;
    digest_opened(opened, algorithms).map_err(|e| missing_or(id, e))
}

fn missing_or(id: u64, error: std::io::Error) -> IngestError {
    match error.kind() {
        std::io::ErrorKind::NotFound => IngestError::StagedDataMissing(id),
        _ => IngestError::staging("cannot read the staged data", error),
    }
}
