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
/// while the bytes streamed in are used when they still describe the file; other
/// items are hashed one by one, a large one while its data is flushed to disk on
/// another thread. Blocking.
pub fn verify_all(
    node: &Node,
    items: &[(&IncomingTransfer, &Path)],
) -> Vec<Result<Digests, IngestError>> {
    items
        .iter()
        .map(|(transfer, staged)| {
            let algorithms = algorithms_for(transfer);
            let remembered = node
                .staged_digests
                .take(transfer.id)
                .filter(|d| d.still_describes(staged))
                .filter(|d| algorithms.iter().all(|a| d.digests.get(*a).is_some()));
            if let Some(remembered) = remembered {
                compare(transfer, remembered.digests)
            } else if transfer.transfer_size >= WORKER_THRESHOLD_BYTES {
                verify_large(transfer, staged, &algorithms)
            } else {
                hash_staged(transfer.id, staged, &algorithms).and_then(|d| compare(transfer, d))
            }
        })
        .collect()
}

/// Hashes a large staged item while flushing it to disk, instead of after.
fn verify_large(
    transfer: &IncomingTransfer,
    staged: &Path,
    algorithms: &[Algorithm],
) -> Result<Digests, IngestError> {
    std::thread::scope(|scope| {
        let syncing = scope.spawn(|| sync_tree(staged));
        let hashed = hash_staged(transfer.id, staged, algorithms);
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
