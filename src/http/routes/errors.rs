//! `search/error` and `error/clear` (ADMIN).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::search::{clamp, window};
use crate::db::repo::errors;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::model::{AuthLevel, ErrorRecord, Timestamp};
use crate::node::Node;
use crate::protocol::errors::{
    ErrorClearRequest, ErrorClearResponse, ErrorSearchRequest, ErrorSearchResponse,
};

fn response(record: ErrorRecord) -> ErrorSearchResponse {
    ErrorSearchResponse {
        id: record.id,
        severity: record.severity,
        category: record.category,
        message: record.message,
        raised_time: record.raised_time,
        cleared_time: record.cleared_time,
        cleared: record.cleared,
        caller: record.caller,
    }
}

/// `search/error`: newest first; cleared errors only with `include_resolved`.
pub async fn search(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<ErrorSearchRequest>,
) -> ApiResult<Json<Vec<ErrorSearchResponse>>> {
    caller.require(AuthLevel::Admin)?;
    let window = window(request.create_time_window.clone())?;
    let limit = clamp(&node, request.max_results);
    let all = node.db.read(errors::all_errors_newest_first)?;
    let found: Vec<ErrorSearchResponse> = all
        .into_iter()
        .filter(|e| request.id.is_none_or(|id| id == e.id))
        .filter(|e| request.category.is_none_or(|c| c == e.category))
        .filter(|e| request.severity.is_none_or(|s| s == e.severity))
        .filter(|e| {
            window.is_none_or(|(start, end)| start <= e.raised_time && e.raised_time <= end)
        })
        .filter(|e| request.include_resolved || !e.cleared)
        .take(limit)
        .map(response)
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found(
            "No errors found.",
            "Check that you are searching for the correct errors.",
        ));
    }
    Ok(Json(found))
}

/// `error/clear`: 404 for an unknown id, 400 if it was already cleared.
pub async fn clear(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<ErrorClearRequest>,
) -> ApiResult<Json<ErrorClearResponse>> {
    caller.require(AuthLevel::Admin)?;
    let id = request.id;
    let cleared_time = node
        .db
        .write(move |txn| {
            let Some(mut record) = errors::get_error(txn, id)? else {
                return Ok(Err(ApiError::not_found(
                    format!("No error with id {id}."),
                    "Search the errors to find the right id.",
                )));
            };
            if record.cleared {
                return Ok(Err(ApiError::bad_request(
                    format!("Error {id} is already cleared."),
                    "Nothing to do.",
                )));
            }
            let now = Timestamp::now();
            record.cleared = true;
            record.cleared_time = Some(now);
            errors::put_error(txn, &record)?;
            Ok(Ok(now))
        })
        .await?;
    Ok(Json(ErrorClearResponse {
        id,
        cleared_time,
        cleared: true,
    }))
}
