//! Files (immutable named data), their local instances, remote instances held by
//! peers, and records of corrupt copies.

use serde::{Deserialize, Serialize};

use super::{Checksum, Timestamp};

/// A named, immutable piece of data known to this node. The name is unique across
/// the whole network of librarians and is never reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub name: String,
    pub create_time: Timestamp,
    pub size: u64,
    /// The checksum in the uploader's algorithm.
    pub checksum: Checksum,
    pub uploader: String,
    /// The librarian the file first entered the network through.
    pub source: String,
}

/// Whether a local copy may be deleted by policy-driven tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "i64", into = "i64")]
pub enum DeletionPolicy {
    #[default]
    Disallowed,
    Allowed,
}

impl DeletionPolicy {
    /// Reads the policy as `upload/commit` sends it: `"allowed"` in any case, or `"1"`.
    pub fn from_request_text(text: &str) -> DeletionPolicy {
        let text = text.trim();
        if text.eq_ignore_ascii_case("allowed") || text == "1" {
            DeletionPolicy::Allowed
        } else {
            DeletionPolicy::Disallowed
        }
    }
}

impl TryFrom<i64> for DeletionPolicy {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(DeletionPolicy::Disallowed),
            1 => Ok(DeletionPolicy::Allowed),
            other => Err(format!("{other} is not a deletion policy (0 or 1)")),
        }
    }
}

impl From<DeletionPolicy> for i64 {
    fn from(policy: DeletionPolicy) -> i64 {
        match policy {
            DeletionPolicy::Disallowed => 0,
            DeletionPolicy::Allowed => 1,
        }
    }
}

/// A copy of a file held in one of this node's stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: u64,
    pub file_name: String,
    pub store_id: u64,
    /// Absolute path of the copy: `<store path>/<file name>`.
    pub path: String,
    pub deletion_policy: DeletionPolicy,
    pub created_time: Timestamp,
    /// False when the copy's store is away (an unplugged drive) or the copy was
    /// marked unavailable.
    pub available: bool,
    /// BLAKE3 of the copy (for a directory, by the directory rule), recorded when it
    /// was written; quire's own integrity checks compare against it.
    pub blake3: [u8; 32],
    /// When the copy was last hashed and found to match.
    pub verified_time: Timestamp,
    /// What the copy looked like on disk when that hash began. A later check may
    /// reuse the hash only while the copy still looks the same; `None` (the copy was
    /// not re-hashed since it was written, or the last hash did not match) never
    /// allows reuse.
    pub verified_stat: Option<CopyStat>,
}

/// What a copy looks like on disk without reading it: enough to tell that it
/// changed since it was hashed (a normal write, truncation, replacement or
/// removal), though not that its bytes rotted in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStat {
    /// The file's length; for a directory, the total of its files' lengths.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch; for a directory, the
    /// newest of its entries' (itself included).
    pub modified_ns: i64,
    /// The inode of the file, or of the directory itself.
    pub inode: u64,
    /// For a directory, a digest of every entry's relative path, type, inode,
    /// length and modification time; zeros for a file.
    pub entries: [u8; 16],
}

impl Instance {
    /// A copy of `file_name` just written at `path` and verified at `now`, with
    /// the BLAKE3 of its bytes; its id is assigned when it is recorded.
    pub fn verified_copy(
        file_name: &str,
        store_id: u64,
        path: &std::path::Path,
        deletion_policy: DeletionPolicy,
        blake3: [u8; 32],
        now: Timestamp,
    ) -> Instance {
        Instance {
            id: 0,
            file_name: file_name.to_string(),
            store_id,
            path: path.to_string_lossy().into_owned(),
            deletion_policy,
            created_time: now,
            available: true,
            blake3,
            verified_time: now,
            verified_stat: None,
        }
    }
}

/// A copy of a file that a peer librarian has confirmed it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteInstance {
    pub id: u64,
    pub file_name: String,
    pub librarian_name: String,
    /// The peer's store id.
    pub store_id: u64,
    pub copy_time: Timestamp,
    /// The librarian that sent the copy.
    pub sender: String,
}

/// An instance found to differ from its recorded checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptFile {
    pub id: u64,
    pub file_name: String,
    pub instance_id: u64,
    pub corrupt_time: Timestamp,
    pub size: u64,
    pub checksum: Checksum,
    /// How many times this instance was found corrupt.
    pub count: u32,
}
