//! `PUT upload/batch_put` (quire): many small files in one request, with their
//! manifest at the head of the body (see `protocol::upload::UploadBatchPutManifest`).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body as RawBody, BodyDataStream, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use bytes::BytesMut;
use futures_util::StreamExt;

use super::upload::item_error;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json;
use crate::ingest::{self, BatchPutInput, MAX_BATCH_PUT_FILES, PutFile};
use crate::model::{AuthLevel, DeletionPolicy};
use crate::node::Node;
use crate::protocol::upload::{
    BATCH_PUT_PREFIX_BYTES, UploadBatchPutItem, UploadBatchPutManifest, UploadBatchPutResponse,
};

/// Largest manifest accepted.
const MAX_MANIFEST_BYTES: u64 = 8 << 20;

/// `PUT upload/batch_put` (READAPPEND): stores every file of the manifest whose
/// bytes arrive whole and match; one answer per file, in manifest order, each
/// with the status a single upload would have had.
pub async fn batch_put(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: RawBody,
) -> ApiResult<Json<UploadBatchPutResponse>> {
    caller.require(AuthLevel::ReadAppend)?;
    let mut stream = body.into_data_stream();
    let (manifest, rest): (UploadBatchPutManifest, _) = read_manifest(&mut stream).await?;
    if manifest.files.len() > MAX_BATCH_PUT_FILES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the manifest lists {} files; a batch holds at most {MAX_BATCH_PUT_FILES}",
                manifest.files.len()
            ),
            "Split the upload into smaller batches.",
        ));
    }
    let input = BatchPutInput {
        caller: caller.username.clone(),
        uploader: manifest.uploader,
        deletion_policy: DeletionPolicy::from_request_text(&manifest.deletion_policy),
        files: manifest
            .files
            .into_iter()
            .map(|f| PutFile {
                name: f.name,
                size: f.size,
                checksum: f.checksum,
            })
            .collect(),
    };
    let head = futures_util::stream::iter((!rest.is_empty()).then_some(Ok(rest)));
    let outcomes = ingest::put_batch(&node, input, head.chain(stream)).await?;
    let mut files: Vec<UploadBatchPutItem> = outcomes
        .into_iter()
        .map(|outcome| UploadBatchPutItem {
            name: outcome.name,
            error: outcome.result.err().map(item_error),
        })
        .collect();
    super::taken::add_recorded(
        &node,
        files
            .iter_mut()
            .map(|item| (item.name.as_str(), &mut item.error)),
    );
    Ok(Json(UploadBatchPutResponse { files }))
}

/// Reads the manifest at the head of the body; returns it and the bytes after it
/// that arrived with it.
pub(super) async fn read_manifest<M: serde::de::DeserializeOwned>(
    stream: &mut BodyDataStream,
) -> Result<(M, Bytes), ApiError> {
    let mut head = BytesMut::new();
    let mut wanted = BATCH_PUT_PREFIX_BYTES;
    let mut length = None;
    loop {
        if length.is_none() && head.len() >= BATCH_PUT_PREFIX_BYTES {
            let prefix: [u8; BATCH_PUT_PREFIX_BYTES] = head[..BATCH_PUT_PREFIX_BYTES]
                .try_into()
                .expect("prefix length");
            let declared = u64::from_le_bytes(prefix);
            if declared > MAX_MANIFEST_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the manifest declares {declared} bytes; at most {MAX_MANIFEST_BYTES} are accepted"
                    ),
                    "Start the body with the manifest's length (u64, little-endian), and split large batches.",
                ));
            }
            length = Some(declared as usize);
            wanted = BATCH_PUT_PREFIX_BYTES + declared as usize;
        }
        if length.is_some() && head.len() >= wanted {
            break;
        }
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(error)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body broke off before its manifest ended: {error}"),
                    "Send the request again.",
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body ended after {} bytes, inside its manifest",
                        head.len()
                    ),
                    "Start the body with the manifest's length (u64, little-endian), then the manifest as JSON, then the files' bytes.",
                ));
            }
        }
    }
    let mut head = head.freeze();
    let rest = head.split_off(wanted);
    let manifest = json::parse(&head.slice(BATCH_PUT_PREFIX_BYTES..))?;
    Ok((manifest, rest))
}
