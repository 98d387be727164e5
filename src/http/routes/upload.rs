//! `upload/stage`, `upload/commit` and the network provider's stream routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::ingest::{
    self, BatchStreamFile, CommitInput, IngestError, MAX_STREAM_BATCH_FILES, StageInput,
    StagingLayout, StreamTarget,
};
use crate::model::{AuthLevel, DeletionPolicy};
use crate::node::Node;
use crate::protocol::upload::{
    BatchItemError, LOCAL_PROVIDER, NETWORK_PROVIDER, StreamBatchItem, StreamBatchManifest,
    StreamBatchResponse, StreamStatus, TransferProvider, UploadBatchCommitItem,
    UploadBatchCommitRequest, UploadBatchCommitResponse, UploadBatchStageItem,
    UploadBatchStageRequest, UploadBatchStageResponse, UploadCompletionRequest,
    UploadInitiationRequest, UploadInitiationResponse,
};

/// The providers offered for staged uploads. `local` sorts before `quire_http`,
/// and the order is the client's preference.
pub(super) fn providers(node: &Node) -> BTreeMap<String, TransferProvider> {
    let mut providers = BTreeMap::new();
    providers.insert(
        LOCAL_PROVIDER.to_string(),
        TransferProvider {
            hostnames: node.config.advertised_hostnames(),
        },
    );
    providers.insert(NETWORK_PROVIDER.to_string(), TransferProvider::default());
    providers
}

fn stage_input(caller: &Caller, request: UploadInitiationRequest) -> StageInput {
    StageInput {
        caller: caller.username.clone(),
        upload_size: request.upload_size,
        upload_checksum: request.upload_checksum,
        upload_name: request.upload_name,
        destination_location: request.destination_location,
        uploader: request.uploader,
        record_checksum_algorithm: request.record_checksum_algorithm,
    }
}

fn commit_input(caller: &Caller, request: UploadCompletionRequest) -> CommitInput {
    CommitInput {
        caller: caller.username.clone(),
        transfer_id: request.transfer_id,
        store_name: request.store_name,
        staging_name: request.staging_name,
        upload_name: request.upload_name,
        destination_location: request.destination_location,
        deletion_policy: DeletionPolicy::from_request_text(&request.deletion_policy),
    }
}

/// The error of one batch item, as a single request would have answered.
pub(super) fn item_error(error: IngestError) -> BatchItemError {
    let api = ApiError::from(error);
    let status = api.status().as_u16();
    let (reason, suggested_remedy) = match api {
        ApiError::Failed { reason, remedy, .. } => (reason, remedy),
        other => (format!("{other:?}"), String::new()),
    };
    BatchItemError {
        status,
        reason,
        suggested_remedy,
        recorded_checksum: None,
        recorded_size: None,
    }
}

/// `upload/stage` (READAPPEND): 201 with the staging area and providers.
pub async fn stage(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UploadInitiationRequest>,
) -> ApiResult<(StatusCode, Json<UploadInitiationResponse>)> {
    caller.require(AuthLevel::ReadAppend)?;
    let (upload_name, destination_location) = (
        request.upload_name.clone(),
        request.destination_location.clone(),
    );
    let staged = ingest::stage_upload(&node, stage_input(&caller, request)).await?;
    let providers = providers(&node);
    let response = UploadInitiationResponse {
        available_bytes_on_store: staged.available_bytes,
        store_name: staged.store.name.clone(),
        staging_name: staged.staging_name,
        staging_location: staged.staging_location,
        upload_name,
        destination_location,
        transfer_providers: providers,
        transfer_id: staged.transfer_id,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// `upload/commit` (READAPPEND): 200 with an empty body once the file is recorded.
pub async fn commit(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UploadCompletionRequest>,
) -> ApiResult<StatusCode> {
    caller.require(AuthLevel::ReadAppend)?;
    ingest::commit_upload(&node, commit_input(&caller, request)).await?;
    Ok(StatusCode::OK)
}

/// Most items in one batch request.
const MAX_BATCH_ITEMS: usize = 4096;

fn check_batch_size(items: usize) -> ApiResult<()> {
    if items > MAX_BATCH_ITEMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{items} items in one batch; the limit is {MAX_BATCH_ITEMS}"),
            "Split the batch.",
        ));
    }
    Ok(())
}

/// `upload/batch_stage` (READAPPEND, quire): stages many uploads in one store and
/// one transaction; each item is staged or refused on its own.
pub async fn batch_stage(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UploadBatchStageRequest>,
) -> ApiResult<(StatusCode, Json<UploadBatchStageResponse>)> {
    caller.require(AuthLevel::ReadAppend)?;
    check_batch_size(request.uploads.len())?;
    let names: Vec<(String, String)> = request
        .uploads
        .iter()
        .map(|u| (u.destination_location.clone(), u.upload_name.clone()))
        .collect();
    let inputs = request
        .uploads
        .into_iter()
        .map(|u| stage_input(&caller, u))
        .collect();
    let staged = ingest::stage_uploads(&node, inputs, StagingLayout::SharedByBatch).await?;
    let mut response = UploadBatchStageResponse {
        store_name: String::new(),
        available_bytes_on_store: 0,
        transfer_providers: providers(&node),
        uploads: Vec::with_capacity(staged.len()),
    };
    for ((destination_location, upload_name), result) in names.into_iter().zip(staged) {
        let mut item = UploadBatchStageItem {
            destination_location,
            upload_name,
            transfer_id: None,
            staging_name: None,
            staging_location: None,
            error: None,
        };
        match result {
            Ok(output) => {
                response.store_name = output.store.name.clone();
                response.available_bytes_on_store = output.available_bytes;
                item.transfer_id = Some(output.transfer_id);
                item.staging_name = Some(output.staging_name);
                item.upload_name = output.upload_name;
                item.staging_location = Some(output.staging_location);
            }
            Err(error) => item.error = Some(item_error(error)),
        }
        response.uploads.push(item);
    }
    let items = response.uploads.iter_mut();
    super::taken::add_recorded(
        &node,
        items.map(|item| (item.destination_location.as_str(), &mut item.error)),
    );
    Ok((StatusCode::CREATED, Json(response)))
}

/// `upload/batch_commit` (READAPPEND, quire): commits many staged uploads, paying
/// for durability once per batch; each item is committed or refused on its own.
pub async fn batch_commit(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UploadBatchCommitRequest>,
) -> ApiResult<Json<UploadBatchCommitResponse>> {
    caller.require(AuthLevel::ReadAppend)?;
    check_batch_size(request.commits.len())?;
    let keys: Vec<(u64, String)> = request
        .commits
        .iter()
        .map(|c| (c.transfer_id, c.destination_location.clone()))
        .collect();
    let inputs = request
        .commits
        .into_iter()
        .map(|c| commit_input(&caller, c))
        .collect();
    let results = ingest::commit_uploads(&node, inputs).await?;
    let mut commits: Vec<UploadBatchCommitItem> = keys
        .into_iter()
        .zip(results)
        .map(
            |((transfer_id, destination_location), result)| UploadBatchCommitItem {
                transfer_id,
                destination_location,
                error: result.err().map(item_error),
            },
        )
        .collect();
    super::taken::add_recorded(
        &node,
        commits
            .iter_mut()
            .map(|item| (item.destination_location.as_str(), &mut item.error)),
    );
    Ok(Json(UploadBatchCommitResponse { commits }))
}

/// Query of the stream routes.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// File inside a directory upload.
    #[serde(default)]
    path: Option<String>,
    /// Where this body starts in the file.
    #[serde(default)]
    offset: u64,
}

fn target(caller: &Caller, transfer_id: u64, query: &StreamQuery) -> StreamTarget {
    StreamTarget {
        caller: caller.username.clone(),
        transfer_id,
        path: query.path.clone(),
        offset: query.offset,
    }
}

/// `GET upload/stream/{id}` (READAPPEND): how many bytes are staged.
pub async fn stream_status(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(transfer_id): Path<u64>,
    Query(query): Query<StreamQuery>,
) -> ApiResult<Json<StreamStatus>> {
    caller.require(AuthLevel::ReadAppend)?;
    let target = target(&caller, transfer_id, &query);
    let staged_bytes = ingest::stream_status(&node, &target)?;
    Ok(Json(StreamStatus {
        transfer_id,
        path: query.path.unwrap_or_default(),
        staged_bytes,
    }))
}

/// `PUT upload/stream/{id}?offset=N[&path=P]` (READAPPEND): the body's bytes are
/// written at `offset` and hashed as they arrive.
pub async fn stream_upload(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path(transfer_id): Path<u64>,
    Query(query): Query<StreamQuery>,
    body: RawBody,
) -> ApiResult<Json<StreamStatus>> {
    caller.require(AuthLevel::ReadAppend)?;
    let target = target(&caller, transfer_id, &query);
    let staged_bytes = ingest::receive_stream(&node, target, body.into_data_stream()).await?;
    Ok(Json(StreamStatus {
        transfer_id,
        path: query.path.unwrap_or_default(),
        staged_bytes,
    }))
}

/// `PUT upload/stream_batch` (READAPPEND, quire): the whole bytes of many staged
/// files, after a manifest (framed as `upload/batch_put`'s); made durable with
/// one sync per store. One answer per file, in manifest order.
pub async fn stream_batch(
    State(node): State<Arc<Node>>,
    caller: Caller,
    body: RawBody,
) -> ApiResult<Json<StreamBatchResponse>> {
    caller.require(AuthLevel::ReadAppend)?;
    let mut stream = body.into_data_stream();
    let (manifest, rest): (StreamBatchManifest, _) =
        super::batch_put::read_manifest(&mut stream).await?;
    if manifest.files.len() > MAX_STREAM_BATCH_FILES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the manifest lists {} files; a batch stream holds at most \
                 {MAX_STREAM_BATCH_FILES}",
                manifest.files.len()
            ),
            "Split the files into smaller batches.",
        ));
    }
    let files: Vec<BatchStreamFile> = manifest
        .files
        .iter()
        .map(|f| BatchStreamFile {
            transfer_id: f.transfer_id,
            size: f.size,
        })
        .collect();
    let head = futures_util::stream::iter((!rest.is_empty()).then_some(Ok(rest)));
    let outcomes =
        ingest::receive_stream_batch(&node, &caller.username, files, head.chain(stream)).await?;
    let files = manifest
        .files
        .into_iter()
        .zip(outcomes)
        .map(|(file, outcome)| match outcome {
            Ok(staged_bytes) => StreamBatchItem {
                transfer_id: file.transfer_id,
                staged_bytes,
                error: None,
            },
            Err(error) => StreamBatchItem {
                transfer_id: file.transfer_id,
                staged_bytes: 0,
                error: Some(item_error(error)),
            },
        })
        .collect();
    Ok(Json(StreamBatchResponse { files }))
}
