//! `corrupt/prepare` and `corrupt/resend` (CALLBACK): a downstream librarian that
//! found its copy of a file corrupt asks this node, which sent it, for a new one
//! (`tasks::resend` does the work). Refusals have the protocol's `corrupt/*` shape,
//! `{"detail": {"reason", "suggested_remedy"}}`: 401 when the caller is not the
//! librarian it names, 409 when this node has no good copy or cannot send.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::json::Body;
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::corrupt::{
    CorruptionPreparationRequest, CorruptionPreparationResponse, CorruptionResendRequest,
    CorruptionResendResponse,
};
use crate::tasks::{self, ResendRefusal};

fn refusal(error: ResendRefusal) -> ApiError {
    let (status, remedy) = match &error {
        ResendRefusal::NotTheLibrarian => (
            StatusCode::UNAUTHORIZED,
            "Log in with the account named after your librarian, and ask for a file this \
             librarian sent you.",
        ),
        ResendRefusal::NoCopy => (
            StatusCode::CONFLICT,
            "Check your database; you likely did not get the file from us.",
        ),
        ResendRefusal::CopyCorrupt => (
            StatusCode::CONFLICT,
            "Wait a while, we will attempt to fix this copy.",
        ),
        ResendRefusal::CannotSend(_) => (
            StatusCode::CONFLICT,
            "Check every pre-condition for file transfers is met.",
        ),
        ResendRefusal::Db(e) => return ApiError::internal("cannot read the records", e),
    };
    ApiError::Detail {
        status,
        detail: json!({"reason": error.to_string(), "suggested_remedy": remedy}),
    }
}

/// `corrupt/prepare`: `{ready: true}` when a new copy can be sent.
pub async fn prepare(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CorruptionPreparationRequest>,
) -> Result<Json<CorruptionPreparationResponse>, ApiError> {
    caller.require(AuthLevel::Callback)?;
    let runtime = tokio::runtime::Handle::current();
    let username = caller.username.clone();
    tokio::task::spawn_blocking(move || {
        tasks::prepare_resend(
            &node,
            runtime,
            &username,
            &request.librarian_name,
            &request.file_name,
        )
    })
    .await
    .map_err(|e| ApiError::internal("the check stopped", e))?
    .map_err(refusal)?;
    Ok(Json(CorruptionPreparationResponse { ready: true }))
}

/// `corrupt/resend`: sends a new copy (201) with the caller's incoming transfer id.
pub async fn resend(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CorruptionResendRequest>,
) -> Result<(StatusCode, Json<CorruptionResendResponse>), ApiError> {
    caller.require(AuthLevel::Callback)?;
    let runtime = tokio::runtime::Handle::current();
    let username = caller.username.clone();
    let file = request.file_name.clone();
    let transfer = tokio::task::spawn_blocking(move || {
        tasks::resend(
            &node,
            runtime,
            &username,
            &request.librarian_name,
            &request.file_name,
        )
    })
    .await
    .map_err(|e| ApiError::internal("the resend stopped", e))?
    .map_err(refusal)?;
    tracing::info!(%file, by = %caller.username, destination_transfer = transfer, "corrupt copy resent");
    Ok((
        StatusCode::CREATED,
        Json(CorruptionResendResponse {
            success: true,
            destination_transfer_id: transfer as i64,
        }),
    ))
}
