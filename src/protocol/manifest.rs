//! `admin/stores/manifest`: every available file of a store, for a SneakerNet drive.

use serde::{Deserialize, Serialize};

use crate::model::{DeletionPolicy, Timestamp};

/// `admin/stores/manifest` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreManifestRequest {
    pub store_name: String,
    /// Create an ONGOING outgoing transfer to `destination_librarian` per file.
    #[serde(default)]
    pub create_outgoing_transfers: bool,
    #[serde(default)]
    pub destination_librarian: String,
    /// Disable the store (no new data) before listing it.
    #[serde(default)]
    pub disable_store: bool,
    /// Mark every listed instance unavailable (the drive is leaving).
    #[serde(default)]
    pub mark_local_instances_as_unavailable: bool,
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub name: String,
    pub create_time: Timestamp,
    pub size: u64,
    pub checksum: String,
    pub uploader: String,
    pub source: String,
    pub instance_path: String,
    pub deletion_policy: DeletionPolicy,
    pub instance_create_time: Timestamp,
    pub instance_available: bool,
    /// The outgoing transfer created for this file, or `-1`.
    pub outgoing_transfer_id: i64,
}

/// `admin/stores/manifest` answer; this JSON is the manifest file that travels
/// with the drive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreManifestResponse {
    /// The name of the librarian that wrote the manifest (the clones' source).
    pub librarian_name: String,
    pub store_name: String,
    pub store_files: Vec<ManifestEntry>,
}
