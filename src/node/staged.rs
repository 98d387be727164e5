//! Digests the network provider computed while it wrote staged bytes, so that commit
//! can verify them without reading the bytes a second time.
//!
//! Invariant: a digest is used only while the staged file is the very file it was
//! computed over (same device, inode, size and modification time); anything else
//! means re-hashing from disk.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use crate::checksum::Digests;

/// Identity of a staged file plus the digests of its bytes.
#[derive(Debug, Clone)]
pub struct StagedDigest {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    pub modified_nanos: i128,
    pub digests: Digests,
}

impl StagedDigest {
    /// Records `digests` as those of the file now at `path`.
    pub fn capture(path: &Path, digests: Digests) -> std::io::Result<StagedDigest> {
        let metadata = std::fs::metadata(path)?;
        Ok(StagedDigest {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.len(),
            modified_nanos: modified_nanos(&metadata),
            digests,
        })
    }

    /// Whether the file at `path` is still the file these digests describe.
    pub fn still_describes(&self, path: &Path) -> bool {
        match std::fs::symlink_metadata(path) {
            Ok(metadata) => {
                metadata.is_file()
                    && metadata.dev() == self.device
                    && metadata.ino() == self.inode
                    && metadata.len() == self.size
                    && modified_nanos(&metadata) == self.modified_nanos
            }
            Err(_) => false,
        }
    }
}

fn modified_nanos(metadata: &std::fs::Metadata) -> i128 {
    i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec())
}

/// Staged digests by transfer id.
#[derive(Default)]
pub struct StagedDigests {
    by_transfer: Mutex<HashMap<u64, StagedDigest>>,
}

impl StagedDigests {
    /// Remembers the digests of a transfer's staged file.
    pub fn insert(&self, transfer_id: u64, digest: StagedDigest) {
        self.by_transfer
            .lock()
            .expect("staged digests lock")
            .insert(transfer_id, digest);
    }

    /// Takes the digests of a transfer, if any.
    pub fn take(&self, transfer_id: u64) -> Option<StagedDigest> {
        self.by_transfer
            .lock()
            .expect("staged digests lock")
            .remove(&transfer_id)
    }

    /// Forgets a transfer (its staged bytes changed or went away).
    pub fn forget(&self, transfer_id: u64) {
        self.take(transfer_id);
    }
}
