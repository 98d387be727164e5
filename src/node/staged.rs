//! Digests the network provider computed while it wrote staged bytes, so that commit
//! can verify them without reading the bytes a second time.
//!
//! Invariant: a digest is used only while the staged file is the very file it was
//! computed over (same device, inode, size and modification time); anything else
//! means re-hashing from disk.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::checksum::Digests;
use crate::fsroot::{Kind, Meta};

/// Identity of a staged file plus the digests of its bytes.
#[derive(Debug, Clone)]
pub struct StagedDigest {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub modified: (i64, i64),
    pub digests: Digests,
}

impl StagedDigest {
    /// Records `digests` as those of the open file `meta` describes.
    pub fn capture(meta: &Meta, digests: Digests) -> StagedDigest {
        StagedDigest {
            device: meta.device,
            inode: meta.inode,
            size: meta.size,
            modified: meta.mtime,
            digests,
        }
    }

    /// Whether the file `meta` describes (as opened for commit) is still the file
    /// these digests describe.
    pub fn still_describes(&self, meta: &Meta) -> bool {
        meta.kind == Kind::File
            && meta.device == self.device
            && meta.inode == self.inode
            && meta.size == self.size
            && meta.mtime == self.modified
    }
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
