//! `upload/stage`, `upload/commit`, and quire's network transfer provider.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Name of the shared-filesystem provider.
pub const LOCAL_PROVIDER: &str = "local";
/// Name of quire's network provider: the client streams the bytes over HTTP to
/// `PUT /api/v2/upload/stream/{transfer_id}`.
pub const NETWORK_PROVIDER: &str = "quire_http";

/// `upload/stage` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadInitiationRequest {
    pub upload_size: i64,
    pub upload_checksum: String,
    pub upload_name: String,
    pub destination_location: String,
    pub uploader: String,
    /// quire addition: record the file with a checksum of this algorithm, computed
    /// by the node while it verifies `upload_checksum`. Other clients omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_checksum_algorithm: Option<String>,
}

/// A transfer provider as advertised by `upload/stage`. Every entry carries
/// `hostnames`, because the reference client decodes each entry as a local provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TransferProvider {
    /// Absent from a Librarian's `rsync` and `globus` entries.
    #[serde(default)]
    pub hostnames: Vec<String>,
}

/// `upload/stage` success (201).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadInitiationResponse {
    pub available_bytes_on_store: u64,
    pub store_name: String,
    pub staging_name: String,
    pub staging_location: String,
    pub upload_name: String,
    pub destination_location: String,
    /// Providers in order of preference: `local` first, then `quire_http`.
    pub transfer_providers: BTreeMap<String, TransferProvider>,
    pub transfer_id: u64,
}

/// `upload/commit` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadCompletionRequest {
    pub store_name: String,
    pub staging_name: String,
    pub staging_location: String,
    pub upload_name: String,
    pub destination_location: String,
    pub transfer_provider_name: String,
    pub transfer_provider: TransferProvider,
    pub meta_mode: String,
    pub deletion_policy: String,
    pub uploader: String,
    #[serde(default)]
    pub null_obsid: bool,
    pub transfer_id: u64,
}

/// Answer of the network provider's status and upload routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamStatus {
    pub transfer_id: u64,
    /// Path inside the upload (empty for a single file).
    pub path: String,
    /// Bytes durably staged so far; a resumed upload continues from here.
    pub staged_bytes: u64,
}

/// How quire begins the reason of a 409 whose name is itself taken. A 409 for a
/// name nested with a stored file (inside it, or holding it) says otherwise, and
/// then no file of that name exists to compare with.
pub const NAME_TAKEN_START: &str = "a file called '";

/// Why one item of a batch was refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchItemError {
    /// The status a single request would have been answered with.
    pub status: u16,
    pub reason: String,
    pub suggested_remedy: String,
    /// For a name that is taken (409): the checksum recorded for it, so a client
    /// can tell its own identical file from a changed one without a search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_checksum: Option<String>,
    /// For a name that is taken (409): the size recorded for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_size: Option<u64>,
}

/// quire addition, `upload/batch_stage` request: many uploads staged at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchStageRequest {
    pub uploads: Vec<UploadInitiationRequest>,
}

/// One item of a batch stage, in request order: staged, or refused with `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchStageItem {
    pub destination_location: String,
    pub upload_name: String,
    pub transfer_id: Option<u64>,
    pub staging_name: Option<String>,
    pub staging_location: Option<String>,
    pub error: Option<BatchItemError>,
}

/// `upload/batch_stage` answer (201).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchStageResponse {
    /// The store of the staged items (empty if none was staged).
    pub store_name: String,
    pub available_bytes_on_store: u64,
    pub transfer_providers: BTreeMap<String, TransferProvider>,
    pub uploads: Vec<UploadBatchStageItem>,
}

/// quire addition, `upload/batch_commit` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchCommitRequest {
    pub commits: Vec<UploadCompletionRequest>,
}

/// One item of a batch commit, in request order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchCommitItem {
    pub transfer_id: u64,
    pub destination_location: String,
    pub error: Option<BatchItemError>,
}

/// `upload/batch_commit` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchCommitResponse {
    pub commits: Vec<UploadBatchCommitItem>,
}

/// quire addition, the manifest of a `PUT upload/batch_put` body. The body is the
/// manifest's length (u64, little-endian), the manifest as JSON, then the bytes
/// of each file back to back, in manifest order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchPutManifest {
    pub uploader: String,
    /// As in `upload/commit`: `allowed` (any case) or `1` means ALLOWED.
    #[serde(default)]
    pub deletion_policy: String,
    pub files: Vec<UploadBatchPutFile>,
}

/// One file of a batch upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchPutFile {
    /// The file's name (its `destination_location`).
    pub name: String,
    pub size: u64,
    /// `alg:::hex`, or a bare MD5 hex digest.
    pub checksum: String,
}

/// One file of a batch upload's answer, in manifest order; `error` is `None` for
/// a file stored and recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchPutItem {
    pub name: String,
    pub error: Option<BatchItemError>,
}

/// `upload/batch_put` answer (200).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadBatchPutResponse {
    pub files: Vec<UploadBatchPutItem>,
}

/// Bytes of the manifest-length prefix of a `upload/batch_put` body.
pub const BATCH_PUT_PREFIX_BYTES: usize = 8;

/// The body of a `upload/batch_put` request: `contents` are the files' bytes, in
/// manifest order.
pub fn batch_put_body(manifest: &UploadBatchPutManifest, contents: &[&[u8]]) -> Vec<u8> {
    let json = serde_json::to_vec(manifest).expect("a manifest always serializes");
    let length: usize = contents.iter().map(|c| c.len()).sum();
    let mut body = Vec::with_capacity(BATCH_PUT_PREFIX_BYTES + json.len() + length);
    body.extend_from_slice(&(json.len() as u64).to_le_bytes());
    body.extend_from_slice(&json);
    for bytes in contents {
        body.extend_from_slice(bytes);
    }
    body
}

/// The manifest at the head of a `upload/stream_batch` body (quire): the staged
/// files whose whole bytes follow, in this order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamBatchManifest {
    pub files: Vec<StreamBatchFile>,
}

/// One file of a batch stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamBatchFile {
    pub transfer_id: u64,
    pub size: u64,
}

/// `upload/stream_batch` answer (200): one entry per file, in manifest order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamBatchResponse {
    pub files: Vec<StreamBatchItem>,
}

/// What became of one file of a batch stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamBatchItem {
    pub transfer_id: u64,
    /// Bytes staged and durable; the whole file unless `error` says otherwise.
    pub staged_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchItemError>,
}

/// The body of a `upload/stream_batch` request, framed as `upload/batch_put`'s:
/// the manifest's length (u64, little-endian), the manifest, then the bytes.
pub fn stream_batch_head(manifest: &StreamBatchManifest) -> Vec<u8> {
    let json = serde_json::to_vec(manifest).expect("a manifest always serializes");
    let mut head = Vec::with_capacity(BATCH_PUT_PREFIX_BYTES + json.len());
    head.extend_from_slice(&(json.len() as u64).to_le_bytes());
    head.extend_from_slice(&json);
    head
}
