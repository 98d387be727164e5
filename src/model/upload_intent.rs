//! Batch uploads in flight (`upload/batch_put`): what one request is about to name
//! in a store, recorded durably before any name appears there, so that start-up
//! can take back whatever a request named without recording it.

use serde::{Deserialize, Serialize};

/// The files one batch upload is naming in one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadIntent {
    pub id: u64,
    pub store_id: u64,
    pub items: Vec<NamedItem>,
}

/// One file of a batch upload: its name once recorded, where it is named in the
/// store, and the identity of the bytes named there. A named path is taken back
/// only while it is still this very inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedItem {
    pub name: String,
    pub target: String,
    pub device: u64,
    pub inode: u64,
}
