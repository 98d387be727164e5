//! `clone/stage`, `clone/ongoing`, `clone/staged`, `clone/complete` and `clone/fail`:
//! one file cloned from a source librarian (A) to a destination librarian (B).
//!
//! Transfer ids are signed on the wire: a manifest entry without an outgoing
//! transfer carries `-1`, and failure bodies use `-1` for "no transfer".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::upload::TransferProvider;

/// The suggested remedy of a clone failure when the server has nothing better.
pub const DEFAULT_REMEDY: &str = "Please try again later.";

/// How a refused `clone/stage` begins its reason when the file itself is there
/// already (a 409 for a name nested with another file says otherwise).
pub const ALREADY_EXISTS: &str = "File already exists on librarian.";

fn default_remedy() -> String {
    DEFAULT_REMEDY.to_string()
}

fn default_true() -> bool {
    true
}

/// `clone/stage` request, sent to the destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneInitiationRequest {
    pub upload_size: i64,
    pub upload_checksum: String,
    pub upload_name: String,
    pub destination_location: String,
    pub uploader: String,
    pub source: String,
    /// The source's outgoing transfer id (`-1`: none, nobody to call back).
    pub source_transfer_id: i64,
}

/// `clone/stage` success (201).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneInitiationResponse {
    pub available_bytes_on_store: u64,
    pub store_name: String,
    pub staging_name: String,
    pub staging_location: String,
    pub upload_name: String,
    pub destination_location: String,
    pub transfer_providers: BTreeMap<String, TransferProvider>,
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
}

/// The two ids naming one clone, as `clone/ongoing` and `clone/staged` send them
/// and as their answers repeat them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneIds {
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
}

/// `clone/ongoing` request and answer.
pub type CloneOngoingRequest = CloneIds;
/// `clone/ongoing` answer.
pub type CloneOngoingResponse = CloneIds;
/// `clone/staged` request.
pub type CloneStagedRequest = CloneIds;

/// `clone/staged` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneStagedResponse {
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
    #[serde(default = "default_true")]
    pub success: bool,
}

/// `clone/complete` request: the destination tells the source that its copy is
/// stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneCompleteRequest {
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
    /// The destination's store that holds the copy.
    pub store_id: i64,
}

/// `clone/complete` answer.
pub type CloneCompleteResponse = CloneIds;

/// `clone/fail` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneFailRequest {
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
    pub reason: String,
}

/// `clone/fail` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneFailResponse {
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
    pub success: bool,
}

/// `clone/batch_stage` request: a source librarian announces many files at once.
/// The transfers' source is `source`; their uploader is the calling account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchInitiationRequest {
    pub uploads: Vec<CloneBatchItem>,
    pub source: String,
    /// The room the whole batch needs on one store.
    pub total_size: i64,
}

/// One file of a `clone/batch_stage` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchItem {
    pub upload_size: i64,
    pub upload_checksum: String,
    pub upload_name: String,
    pub destination_location: String,
    pub uploader: String,
    pub source_transfer_id: i64,
}

/// `clone/batch_stage` success (201): every file staged on one store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchInitiationResponse {
    pub available_bytes_on_store: u64,
    pub store_name: String,
    pub uploads: Vec<CloneBatchStaged>,
    pub async_transfer_providers: BTreeMap<String, TransferProvider>,
}

/// Where one file of a batch goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchStaged {
    pub staging_name: String,
    pub staging_location: String,
    pub upload_name: String,
    pub destination_location: String,
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
}

/// The failure body of `clone/batch_stage` (sent as the body itself): the
/// source transfers that made the batch fail, and `-1` for each destination id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchFailedResponse {
    pub reason: String,
    #[serde(default = "default_remedy")]
    pub suggested_remedy: String,
    pub source_transfer_ids: Vec<i64>,
    pub destination_transfer_ids: Vec<i64>,
}

/// The failure body of the clone routes. `clone/stage` sends it JSON-encoded inside
/// `{"detail": "<text>"}`; the others send it as the body itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneFailedResponse {
    pub reason: String,
    #[serde(default = "default_remedy")]
    pub suggested_remedy: String,
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
}

/// Most completions in one `clone/batch_complete` request.
pub const MAX_BATCH_COMPLETIONS: usize = 4096;

/// `clone/batch_complete` request (quire): many `clone/complete`s from one
/// destination, recorded in one transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchCompleteRequest {
    pub completions: Vec<CloneCompleteRequest>,
}

/// `clone/batch_complete` answer: one result per completion, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchCompleteResponse {
    pub results: Vec<CloneBatchCompleteItem>,
}

/// What became of one completion: `error` is the reason a single
/// `clone/complete` would have been refused with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloneBatchCompleteItem {
    pub source_transfer_id: i64,
    pub destination_transfer_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
