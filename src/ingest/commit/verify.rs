//! Verifying staged bytes against their transfer's declared size and checksum.

use std::path::{Path, PathBuf};

use crate::checksum::{Digests, WORKER_THRESHOLD_BYTES, digest_path};
use crate::ingest::IngestError;
use crate::model::{Algorithm, IncomingTransfer};
use crate::node::Node;
use crate::store::durable::sync_tree;

/// The algorithms a transfer's verification needs (BLAKE3 is always added).
pub fn algorithms_for(transfer: &IncomingTransfer) -> Vec<Algorithm> {
    let mut algorithms = vec![transfer.transfer_checksum.algorithm];
    algorithms.extend(transfer.record_algorithm);
    algorithms
}

/// Checks the staged bytes against the transfer's size and checksum, using the
/// digests taken while the bytes arrived when they still describe the file, and
/// hashing the staged data once otherwise.
pub async fn verify(
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
            // Large data: flush it to disk while it is being hashed, instead of after.
            let syncing = (transfer.transfer_size >= WORKER_THRESHOLD_BYTES).then(|| {
                let staged = staged.to_path_buf();
                tokio::task::spawn_blocking(move || sync_tree(&staged))
            });
            let staged: PathBuf = staged.to_path_buf();
            let id = transfer.id;
            let hashed =
                tokio::task::spawn_blocking(move || hash_staged(id, &staged, &algorithms)).await;
            if let Some(syncing) = syncing {
                // The commit syncs again, so a failure here only costs time.
                let _ = syncing.await;
            }
            hashed??
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
