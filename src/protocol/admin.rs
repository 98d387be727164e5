//! `admin/*` routes of the node core.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// One `admin/stores/list` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreListItem {
    pub name: String,
    pub store_type: String,
    pub free_space: u64,
    pub ingestable: bool,
    pub available: bool,
    pub enabled: bool,
}

/// `admin/stores/state_change` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreStateChangeRequest {
    pub store_name: String,
    pub enabled: bool,
}

/// `admin/stores/state_change` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreStateChangeResponse {
    pub store_name: String,
    pub enabled: bool,
    pub success: bool,
}

/// `admin/add_file` request: register data already on a store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddFileRequest {
    pub name: String,
    pub create_time: Timestamp,
    pub size: u64,
    pub checksum: String,
    pub uploader: String,
    pub source: String,
    pub path: String,
    pub store_name: String,
}

/// `admin/add_file` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddFileResponse {
    pub already_exists: bool,
    pub file_exists: bool,
    pub success: bool,
}

/// `admin/instance/delete_local` and `delete_remote` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteInstanceRequest {
    pub instance_id: u64,
    #[serde(default)]
    pub delete_file: Option<bool>,
}

/// `admin/instance/delete_*` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteInstanceResponse {
    pub success: bool,
    pub instance_id: u64,
}
