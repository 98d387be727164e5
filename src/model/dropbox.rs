//! Drop-box ingests in flight: what one batch is about to place in a store,
//! recorded durably before anything lands there, so that start-up can take back
//! whatever a batch placed without recording it.

use serde::{Deserialize, Serialize};

/// One batch of drop-box files on their way into one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropboxIntent {
    pub id: u64,
    pub store_id: u64,
    pub items: Vec<IntentItem>,
}

/// One file of a batch: where it comes from and what is placed where. A placed
/// path is taken back only if it is still the very inode recorded here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentItem {
    /// The file's name once recorded.
    pub name: String,
    /// The drop-box file (absolute path) and its identity.
    pub source: String,
    pub source_device: u64,
    pub source_inode: u64,
    /// Where the bytes are placed in the store, and the identity of what is placed
    /// there: the same inode as the source when linked, a new one when copied.
    pub target: String,
    pub target_device: u64,
    pub target_inode: u64,
}
