//! `validate/file`.

use serde::{Deserialize, Serialize};

/// `validate/file` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileValidationRequest {
    pub file_name: String,
}

/// One row per copy of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileValidationResponseItem {
    pub librarian: String,
    pub store: u64,
    pub instance_id: u64,
    pub original_checksum: String,
    pub original_size: u64,
    pub current_checksum: String,
    pub current_size: u64,
    pub computed_same_checksum: bool,
}
