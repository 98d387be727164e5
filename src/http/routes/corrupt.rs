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

/// One of `tasks`' corrupt/* steps: (node, runtime, caller, librarian named,
/// file) -> its answer.
type Step<T> = fn(&Arc<Node>, tokio::runtime::Handle, &str, &str, &str) -> Result<T, ResendRefusal>;

/// Runs one of `tasks`' corrupt/* steps (blocking: it may call the caller back)
/// for the caller's request.
async fn on_blocking_thread<T: Send + 'static>(
    node: Arc<Node>,
    caller: &Caller,
    librarian_name: String,
    file_name: String,
    step: Step<T>,
) -> Result<T, ApiError> {
    let runtime = tokio::runtime::Handle::current();
    let username = caller.username.clone();
    tokio::task::spawn_blocking(move || {
        step(&node, runtime, &username, &librarian_name, &file_name)
    })
    .await
    .map_err(|e| ApiError::internal("the request's work stopped", e))?
    .map_err(refusal)
}

/// `corrupt/prepare`: `{ready: true}` when a new copy can be sent.
pub async fn prepare(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CorruptionPreparationRequest>,
) -> Result<Json<CorruptionPreparationResponse>, ApiError> {
    caller.require(AuthLevel::Callback)?;
    let (librarian, file) = (request.librarian_name, request.file_name);
    on_blocking_thread(node, &caller, librarian, file, tasks::prepare_resend).await?;
    Ok(Json(CorruptionPreparationResponse { ready: true }))
}

/// `corrupt/resend`: sends a new copy (201) with the caller's incoming transfer id.
pub async fn resend(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CorruptionResendRequest>,
) -> Result<(StatusCode, Json<CorruptionResendResponse>), ApiError> {
    caller.require(AuthLevel::Callback)?;
    let file = request.file_name.clone();
    let transfer = on_blocking_thread(
        node,
        &caller,
        request.librarian_name,
        file.clone(),
        tasks::resend,
    )
    .await?;
    tracing::info!(%file, by = %caller.username, destination_transfer = transfer, "corrupt copy resent");
    Ok((
        StatusCode::CREATED,
        Json(CorruptionResendResponse {
            success: true,
            destination_transfer_id: transfer as i64,
        }),
    ))
}
