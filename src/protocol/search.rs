//! `search/file`, `search/instance_local`, `search/instance_remote`.

use serde::{Deserialize, Serialize};

use crate::model::{DeletionPolicy, Timestamp};

fn default_max_results() -> usize {
    64
}

/// `search/file` request; every filter is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileSearchRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// Inclusive `[start, end]` window on the creation time.
    #[serde(default)]
    pub create_time_window: Option<Vec<Timestamp>>,
    #[serde(default)]
    pub uploader: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}

/// A local instance as search results show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceSearchResponse {
    pub path: String,
    pub deletion_policy: DeletionPolicy,
    pub created_time: Timestamp,
    pub available: bool,
    pub id: Option<u64>,
    pub file_name: Option<String>,
    pub store_id: Option<u64>,
}

/// A remote instance as search results show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteInstanceSearchResponse {
    pub librarian_name: String,
    pub copy_time: Timestamp,
    pub id: Option<u64>,
    pub file_name: Option<String>,
    pub store_id: Option<u64>,
    pub sender: Option<String>,
}

/// One `search/file` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSearchResponse {
    pub name: String,
    pub create_time: Timestamp,
    pub size: u64,
    pub checksum: String,
    pub uploader: String,
    pub source: String,
    pub instances: Vec<InstanceSearchResponse>,
    pub remote_instances: Vec<RemoteInstanceSearchResponse>,
}

/// `search/instance_local` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstanceSearchRequest {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub path: Option<String>,
    /// `"allowed"`/`"disallowed"` (any case) or `0`/`1`.
    #[serde(default)]
    pub deletion_policy: Option<serde_json::Value>,
    #[serde(default)]
    pub created_time: Option<Timestamp>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub store_id: Option<u64>,
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}

/// `search/instance_remote` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RemoteInstanceSearchRequest {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub store_id: Option<u64>,
    #[serde(default)]
    pub librarian_id: Option<u64>,
    #[serde(default)]
    pub copy_time: Option<Timestamp>,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}
