//! `upload/stage`, `upload/commit` and the network provider's stream routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::http::auth::Caller;
use crate::http::error::ApiResult;
use crate::http::json::Body;
use crate::ingest::{self, CommitInput, StageInput, StreamTarget};
use crate::model::{AuthLevel, DeletionPolicy};
use crate::node::Node;
use crate::protocol::upload::{
    LOCAL_PROVIDER, NETWORK_PROVIDER, StreamStatus, TransferProvider, UploadCompletionRequest,
    UploadInitiationRequest, UploadInitiationResponse,
};

/// `upload/stage` (READAPPEND): 201 with the staging area and providers.
pub async fn stage(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UploadInitiationRequest>,
) -> ApiResult<(StatusCode, Json<UploadInitiationResponse>)> {
    caller.require(AuthLevel::ReadAppend)?;
    let staged = ingest::stage_upload(
        &node,
        StageInput {
            caller: caller.username.clone(),
            upload_size: request.upload_size,
            upload_checksum: request.upload_checksum,
            upload_name: request.upload_name.clone(),
            destination_location: request.destination_location.clone(),
            uploader: request.uploader,
            record_checksum_algorithm: request.record_checksum_algorithm,
        },
    )
    .await?;
    // `local` sorts before `quire_http`, and the order is the client's preference.
    let mut providers = BTreeMap::new();
    providers.insert(
        LOCAL_PROVIDER.to_string(),
        TransferProvider {
            hostnames: node.config.advertised_hostnames(),
        },
    );
    providers.insert(NETWORK_PROVIDER.to_string(), TransferProvider::default());
    let response = UploadInitiationResponse {
        available_bytes_on_store: staged.available_bytes,
        store_name: staged.store.name.clone(),
        staging_name: staged.staging_name,
        staging_location: staged.staging_location,
        upload_name: request.upload_name,
        destination_location: request.destination_location,
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
    ingest::commit_upload(
        &node,
        CommitInput {
            caller: caller.username.clone(),
            transfer_id: request.transfer_id,
            store_name: request.store_name,
            staging_name: request.staging_name,
            upload_name: request.upload_name,
            destination_location: request.destination_location,
            deletion_policy: DeletionPolicy::from_request_text(&request.deletion_policy),
        },
    )
    .await?;
    Ok(StatusCode::OK)
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
