//! `clone/stage` and `clone/batch_stage` (READAPPEND), `clone/ongoing`
//! (READAPPEND), `clone/staged` (CALLBACK), `clone/complete` (CALLBACK) and
//! `clone/fail` (READAPPEND).
//!
//! Failure bodies are the protocol's `CloneFailedResponse`: `clone/stage` sends it
//! JSON-encoded in `{"detail": "<text>"}`, the other routes as the body itself
//! (`clone/batch_stage`: a `CloneBatchFailedResponse`).
//! Reasons keep the reference's wording, which clients match on (for instance
//! "already exists on librarian" makes a manifest ingest count a file as present).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::upload::providers;
use crate::clones::{self, CloneError, Requester};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::json::Body;
use crate::ingest::{self, CloneBatchError, CloneStageError, CloneStageInput, IngestError};
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::QUIRE_NODE_HEADER;
use crate::protocol::clone::{
    ALREADY_EXISTS, CloneBatchCompleteItem, CloneBatchCompleteRequest, CloneBatchCompleteResponse,
    CloneBatchFailedResponse, CloneBatchInitiationRequest, CloneBatchInitiationResponse,
    CloneBatchStaged, CloneCompleteRequest, CloneCompleteResponse, CloneFailRequest,
    CloneFailResponse, CloneFailedResponse, CloneIds, CloneInitiationRequest,
    CloneInitiationResponse, CloneStagedResponse, DEFAULT_REMEDY, MAX_BATCH_COMPLETIONS,
};
use crate::protocol::upload::LOCAL_PROVIDER;

/// A refused request, with its complete answer.
pub struct Refused(Box<Response>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl Refused {
    fn with(answer: impl IntoResponse) -> Refused {
        Refused(Box::new(answer.into_response()))
    }
}

/// A handler's answer: the success body, or a refusal.
type CloneResult<T> = Result<T, Refused>;

fn requester(caller: &Caller) -> Requester<'_> {
    Requester {
        username: &caller.username,
        admin: caller.level >= AuthLevel::Admin,
    }
}

fn allow(caller: &Caller, level: AuthLevel) -> CloneResult<()> {
    caller.require(level).map(|_| ()).map_err(Refused::with)
}

/// A `CloneFailedResponse` body with `status`.
fn failed(status: StatusCode, reason: String, remedy: &str, ids: CloneIds) -> Refused {
    let body = CloneFailedResponse {
        reason,
        suggested_remedy: remedy.to_string(),
        source_transfer_id: ids.source_transfer_id,
        destination_transfer_id: ids.destination_transfer_id,
    };
    Refused::with((status, Json(body)))
}

/// `clone/stage`: creates staging for one clone and an INITIATED transfer (201).
pub async fn stage(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CloneInitiationRequest>,
) -> CloneResult<(StatusCode, Json<CloneInitiationResponse>)> {
    allow(&caller, AuthLevel::ReadAppend)?;
    let source_transfer_id = request.source_transfer_id;
    let input = CloneStageInput {
        upload_size: request.upload_size,
        upload_checksum: request.upload_checksum,
        upload_name: request.upload_name.clone(),
        destination_location: request.destination_location.clone(),
        uploader: request.uploader,
        source: request.source,
        source_transfer_id: u64::try_from(source_transfer_id).ok(),
    };
    let staged = ingest::stage_clone(&node, input)
        .await
        .map_err(|error| stage_refusal(error, source_transfer_id))?;
    tracing::info!(
        transfer = staged.transfer_id,
        name = ?request.destination_location,
        by = ?caller.username,
        "clone staged"
    );
    let response = CloneInitiationResponse {
        available_bytes_on_store: staged.available_bytes,
        store_name: staged.store.name.clone(),
        staging_name: staged.staging_name,
        staging_location: staged.staging_location,
        upload_name: request.upload_name,
        destination_location: request.destination_location,
        transfer_providers: providers(&node),
        source_transfer_id,
        destination_transfer_id: staged.transfer_id as i64,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// `clone/batch_stage`: stages every file of a batch on one store, or none (201).
/// A Librarian caller is offered only the `local` provider: it takes the first
/// provider whose shape it can parse, so an entry of another shape would be
/// mistaken for `local`. A quire node (it sends `x-quire-node`) is also offered
/// `quire_http`, the stream into this node's staging.
pub async fn batch_stage(
    State(node): State<Arc<Node>>,
    caller: Caller,
    headers: HeaderMap,
    Body(request): Body<CloneBatchInitiationRequest>,
) -> CloneResult<(StatusCode, Json<CloneBatchInitiationResponse>)> {
    allow(&caller, AuthLevel::ReadAppend)?;
    let source_ids: Vec<i64> = request
        .uploads
        .iter()
        .map(|u| u.source_transfer_id)
        .collect();
    let clones = request
        .uploads
        .iter()
        .map(|upload| CloneStageInput {
            upload_size: upload.upload_size,
            upload_checksum: upload.upload_checksum.clone(),
            upload_name: upload.upload_name.clone(),
            destination_location: upload.destination_location.clone(),
            uploader: caller.username.clone(),
            source: request.source.clone(),
            source_transfer_id: u64::try_from(upload.source_transfer_id).ok(),
        })
        .collect();
    let staged = ingest::stage_clone_batch(&node, clones, request.total_size)
        .await
        .map_err(|error| batch_refusal(error, &source_ids))?;
    tracing::info!(
        files = staged.len(),
        bytes = request.total_size,
        source = ?request.source,
        by = ?caller.username,
        "clone batch staged"
    );
    let (store_name, available) = staged.first().map_or_else(
        || (String::new(), 0),
        |s| (s.store.name.clone(), s.available_bytes),
    );
    let uploads = staged
        .into_iter()
        .zip(&request.uploads)
        .map(|(staged, upload)| CloneBatchStaged {
            staging_name: staged.staging_name,
            staging_location: staged.staging_location,
            upload_name: upload.upload_name.clone(),
            destination_location: upload.destination_location.clone(),
            source_transfer_id: upload.source_transfer_id,
            destination_transfer_id: staged.transfer_id as i64,
        })
        .collect();
    let mut offered = providers(&node);
    if !headers.contains_key(QUIRE_NODE_HEADER) {
        offered.retain(|name, _| name == LOCAL_PROVIDER);
    }
    let response = CloneBatchInitiationResponse {
        available_bytes_on_store: available,
        store_name,
        uploads,
        async_transfer_providers: offered,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// The answer of a refused batch: a `CloneBatchFailedResponse` naming the source
/// transfers that caused it, with the reference's reasons.
fn batch_refusal(error: CloneBatchError, source_ids: &[i64]) -> Refused {
    let ids_of = |items: &[usize]| -> Vec<i64> {
        items
            .iter()
            .filter_map(|i| source_ids.get(*i).copied())
            .collect()
    };
    let (status, reason, remedy, ids) = match error {
        CloneBatchError::Ongoing(items) => (
            StatusCode::TOO_EARLY,
            "Transfer is ongoing.".to_string(),
            "These files are being copied here already; fail those transfers (clone/fail) \
             or wait for them to complete, then send the others again."
                .to_string(),
            ids_of(&items),
        ),
        CloneBatchError::Exists(items) => (
            StatusCode::CONFLICT,
            ALREADY_EXISTS.to_string(),
            "These files are here already (or a name is taken by another file): record \
             them as remote instances instead of sending them, then send the others again."
                .to_string(),
            ids_of(&items),
        ),
        CloneBatchError::Restarted(items) => (
            StatusCode::NOT_ACCEPTABLE,
            "Transfer was already initiated or staged.".to_string(),
            "We have failed our earlier transfers of these files; fail yours too, then \
             send the batch again."
                .to_string(),
            ids_of(&items),
        ),
        CloneBatchError::Invalid { items, reason } => (
            StatusCode::BAD_REQUEST,
            reason,
            "Correct or leave out these files; nothing of the batch was staged.".to_string(),
            ids_of(&items),
        ),
        CloneBatchError::Refused(refusal) => {
            let (status, reason, remedy) = ingest_refusal(refusal, DEFAULT_REMEDY);
            (status, reason, remedy, source_ids.to_vec())
        }
    };
    let body = CloneBatchFailedResponse {
        reason,
        suggested_remedy: remedy,
        destination_transfer_ids: vec![-1; ids.len()],
        source_transfer_ids: ids,
    };
    Refused::with((status, Json(body)))
}

/// Status, reason and remedy of a clone refused the way an upload would be, in
/// the reference's words where clients match on them; `fallback_remedy` where
/// the error has none of its own.
fn ingest_refusal(refusal: IngestError, fallback_remedy: &str) -> (StatusCode, String, String) {
    let reason = match &refusal {
        IngestError::NameTaken(name) => format!("{ALREADY_EXISTS} ({name})"),
        IngestError::NegativeSize(_) => "Upload size must be positive.".to_string(),
        IngestError::NoStore { why, .. } => {
            format!("No stores available for upload. Your upload is too large. ({why})")
        }
        other => other.to_string(),
    };
    match ApiError::from(refusal) {
        ApiError::Failed { status, remedy, .. } => (status, reason, remedy),
        other => (other.status(), reason, fallback_remedy.to_string()),
    }
}

/// The `{"detail": "<CloneFailedResponse as JSON>"}` answer of a refused stage.
fn stage_refusal(error: CloneStageError, source_transfer_id: i64) -> Refused {
    let destination_transfer_id = error.existing_transfer().map_or(-1, |id| id as i64);
    let (status, reason, remedy) = match error {
        CloneStageError::Ongoing { .. } => (
            StatusCode::TOO_EARLY,
            "Transfer is ongoing.".to_string(),
            "This file is being copied here already; fail that transfer (clone/fail) or wait \
             for it to complete."
                .to_string(),
        ),
        CloneStageError::Restarted { .. } => (
            StatusCode::NOT_ACCEPTABLE,
            "Transfer was already initiated or staged.".to_string(),
            "We have failed our earlier transfer of this file; fail yours too, then stage again."
                .to_string(),
        ),
        CloneStageError::Refused(refusal) => ingest_refusal(refusal, ""),
    };
    let body = CloneFailedResponse {
        reason,
        suggested_remedy: remedy,
        source_transfer_id,
        destination_transfer_id,
    };
    let detail = serde_json::to_string(&body).expect("a failure body always serializes");
    Refused::with(ApiError::Detail {
        status,
        detail: Value::String(detail),
    })
}

/// Maps a refused state change to its answer.
fn refusal(error: CloneError, ids: CloneIds, not_found: (StatusCode, String)) -> Refused {
    match error {
        CloneError::TransferNotFound(_) => failed(
            not_found.0,
            not_found.1,
            "Check the transfer id, and that you log in with the account named after your \
             librarian.",
            ids,
        ),
        CloneError::WrongStatus {
            found, expected, ..
        } => failed(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Transfer is not in {expected} status (it is {}).",
                found.name()
            ),
            "Check the order of the clone steps; the transfer may have been failed meanwhile.",
            ids,
        ),
        CloneError::UnknownLibrarian(name) => failed(
            StatusCode::BAD_REQUEST,
            format!("Could not find librarian {name}."),
            "Add the librarian (admin/librarians/add); nothing was changed, so the callback \
             can be repeated.",
            ids,
        ),
        CloneError::UnknownStore(name) => failed(
            StatusCode::BAD_REQUEST,
            format!("Store {name} does not exist."),
            "Check the store name.",
            ids,
        ),
        CloneError::Db(error) => Refused::with(ApiError::from(error)),
    }
}

/// `clone/ongoing`: INITIATED -> ONGOING.
pub async fn ongoing(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(ids): Body<CloneIds>,
) -> CloneResult<Json<CloneIds>> {
    allow(&caller, AuthLevel::ReadAppend)?;
    clones::mark_ongoing(&node, requester(&caller), ids.destination_transfer_id)
        .await
        .map_err(|e| refusal(e, ids, not_found()))?;
    Ok(Json(ids))
}

/// `clone/staged`: ONGOING -> STAGED; `recieve_clone` stores the file later.
pub async fn staged(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(ids): Body<CloneIds>,
) -> CloneResult<Json<CloneStagedResponse>> {
    allow(&caller, AuthLevel::Callback)?;
    clones::mark_staged(&node, requester(&caller), ids.destination_transfer_id)
        .await
        .map_err(|e| refusal(e, ids, not_found()))?;
    Ok(Json(CloneStagedResponse {
        source_transfer_id: ids.source_transfer_id,
        destination_transfer_id: ids.destination_transfer_id,
        success: true,
    }))
}

fn not_found() -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        "Could not find transfer.".to_string(),
    )
}

/// The store ids a peer may report: librarians (quire and the reference) number
/// stores from 1, in a 32-bit signed column for the reference.
const STORE_IDS: std::ops::RangeInclusive<i64> = 1..=i32::MAX as i64;

/// `clone/complete`: the destination stored its copy; the outgoing transfer
/// completes and a remote instance is recorded.
pub async fn complete(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CloneCompleteRequest>,
) -> CloneResult<Json<CloneCompleteResponse>> {
    allow(&caller, AuthLevel::Callback)?;
    let ids = CloneIds {
        source_transfer_id: request.source_transfer_id,
        destination_transfer_id: request.destination_transfer_id,
    };
    if !STORE_IDS.contains(&request.store_id) {
        return Err(failed(
            StatusCode::BAD_REQUEST,
            format!(
                "store_id {} is not a store id (store ids run from {} to {}).",
                request.store_id,
                STORE_IDS.start(),
                STORE_IDS.end()
            ),
            "Send the id of the store that holds your copy; nothing was changed.",
            ids,
        ));
    }
    let not_found = (
        StatusCode::BAD_REQUEST,
        "Could not find transfer.".to_string(),
    );
    let remote = clones::complete_outgoing(
        &node,
        requester(&caller),
        request.source_transfer_id,
        request.destination_transfer_id,
        request.store_id,
    )
    .await
    .map_err(|e| refusal(e, ids, not_found))?;
    tracing::info!(
        transfer = request.source_transfer_id,
        file = ?remote.file_name,
        librarian = ?remote.librarian_name,
        "clone completed"
    );
    Ok(Json(ids))
}

/// `clone/batch_complete` (CALLBACK, quire): many `clone/complete`s of one
/// destination in one transaction, each answered on its own.
pub async fn batch_complete(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CloneBatchCompleteRequest>,
) -> Result<Json<CloneBatchCompleteResponse>, ApiError> {
    caller.require(AuthLevel::Callback)?;
    if request.completions.len() > MAX_BATCH_COMPLETIONS {
        return Err(ApiError::bad_request(
            format!(
                "{} completions in one request; at most {MAX_BATCH_COMPLETIONS} are accepted",
                request.completions.len()
            ),
            "Split the completions into smaller requests.",
        ));
    }
    let valid: Vec<bool> = request
        .completions
        .iter()
        .map(|c| STORE_IDS.contains(&c.store_id))
        .collect();
    let asked: Vec<(i64, i64, i64)> = request
        .completions
        .iter()
        .zip(&valid)
        .filter(|(_, ok)| **ok)
        .map(|(c, _)| (c.source_transfer_id, c.destination_transfer_id, c.store_id))
        .collect();
    let mut outcomes = clones::complete_outgoing_batch(&node, requester(&caller), asked)
        .await
        .map_err(|e| ApiError::internal("cannot record the completions", e))?
        .into_iter();
    let mut completed = 0;
    let results = request
        .completions
        .iter()
        .zip(valid)
        .map(|(c, ok)| {
            let error = if ok {
                match outcomes.next() {
                    Some(Ok(_)) => {
                        completed += 1;
                        None
                    }
                    Some(Err(error)) => Some(error.to_string()),
                    None => Some("not recorded".to_string()),
                }
            } else {
                Some(format!("store_id {} is not a store id", c.store_id))
            };
            CloneBatchCompleteItem {
                source_transfer_id: c.source_transfer_id,
                destination_transfer_id: c.destination_transfer_id,
                error,
            }
        })
        .collect();
    tracing::info!(completed, asked = request.completions.len(), by = ?caller.username, "clones completed");
    Ok(Json(CloneBatchCompleteResponse { results }))
}

/// `clone/fail`: the sender gives up an incoming transfer.
pub async fn fail(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CloneFailRequest>,
) -> CloneResult<Json<CloneFailResponse>> {
    allow(&caller, AuthLevel::ReadAppend)?;
    let ids = CloneIds {
        source_transfer_id: request.source_transfer_id,
        destination_transfer_id: request.destination_transfer_id,
    };
    let id = request.destination_transfer_id;
    let not_found = (
        StatusCode::NOT_FOUND,
        format!("Could not find transfer with ID {id}."),
    );
    clones::fail_incoming(&node, requester(&caller), id)
        .await
        .map_err(|e| refusal(e, ids, not_found))?;
    // The reason is the peer's free text: Debug-formatted, so a line break in it
    // cannot start a forged log line.
    tracing::info!(transfer = id, reason = ?request.reason, by = ?caller.username, "clone failed by its sender");
    Ok(Json(CloneFailResponse {
        source_transfer_id: ids.source_transfer_id,
        destination_transfer_id: ids.destination_transfer_id,
        success: true,
    }))
}
