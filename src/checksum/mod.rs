//! Checksums: every supported algorithm, computed in the same pass that reads,
//! receives or copies the bytes, with MD5 and SHA-* on a core of their own.

mod digester;
mod files;
mod hasher;
mod trees;

pub use digester::{Digester, Digests, WORKER_THRESHOLD_BYTES};
pub use files::{
    copy_and_digest, copy_and_digest_reporting, copy_and_digest_unsynced, copy_file_and_digest,
    digest_directory, digest_file, digest_open_file, digest_path,
};
pub use hasher::{Hasher, hash_bytes};
pub use trees::{CopySync, copy_in, digest_in, digest_opened};
