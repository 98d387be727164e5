//! `admin/tasks/list` and `admin/tasks/run` (ADMIN, quire additions): the background
//! tasks' last runs and next runs, and running one now.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::tasks::{TaskListResponse, TaskRunRequest, TaskRunResponse};

/// `admin/tasks/list`: every task with its last run and next run.
pub async fn list(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> ApiResult<Json<TaskListResponse>> {
    caller.require(AuthLevel::Admin)?;
    Ok(Json(TaskListResponse {
        tasks: node.tasks.statuses(),
    }))
}

/// `admin/tasks/run`: asks for a run now (after the run in progress, if any); with
/// `wait`, answers when that run has finished, with its report.
pub async fn run(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<TaskRunRequest>,
) -> ApiResult<Json<TaskRunResponse>> {
    caller.require(AuthLevel::Admin)?;
    let finished = node.tasks.run_now(&request.task_name).map_err(|error| {
        ApiError::bad_request(
            error.to_string(),
            "List the node's tasks with `quire tasks`; tasks are declared in the configuration.",
        )
    })?;
    let report = if request.wait {
        let report = finished.await.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The node is shutting down; the task will not run.",
                "Run it again once the node is back.",
            )
        })?;
        Some(report)
    } else {
        None
    };
    Ok(Json(TaskRunResponse {
        task_name: request.task_name,
        report,
    }))
}
