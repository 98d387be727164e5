//! `admin/transfers/summary` (quire, ADMIN): outgoing transfers per peer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::clones;
use crate::http::auth::Caller;
use crate::http::error::ApiResult;
use crate::http::json::Body;
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::transfers::{TransferSummaryRequest, TransferSummaryResponse};

/// `admin/transfers/summary`: counts per peer, and one peer's recent transfers
/// when `librarian_name` is given.
pub async fn summary(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<TransferSummaryRequest>,
) -> ApiResult<Json<TransferSummaryResponse>> {
    caller.require(AuthLevel::Admin)?;
    let summary = node.db.read(|tx| clones::summarize(tx, &request))?;
    Ok(Json(summary))
}
