//! quire's task routes (`admin/tasks/list`, `admin/tasks/run`): what each background
//! task did last and when it runs next.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// What one run of a task did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub started: Timestamp,
    pub duration_seconds: f64,
    /// Items (files, transfers, instances) handled successfully.
    pub items_done: u64,
    /// Items that failed; the run went on with the next one.
    pub errors: u64,
    /// The most recent of those failures.
    pub last_error: Option<String>,
    /// `completed`, `soft timeout reached`, `stopped for shutdown`, or `failed: <why>`.
    pub outcome: String,
}

/// One row of `admin/tasks/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_name: String,
    pub task_type: String,
    pub every_seconds: f64,
    pub soft_timeout_seconds: Option<f64>,
    /// When the run in progress started, if one is.
    pub running_since: Option<Timestamp>,
    pub last_run: Option<RunReport>,
    /// When the next scheduled run starts (`None` while one runs).
    pub next_run: Option<Timestamp>,
}

/// `admin/tasks/list` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskListResponse {
    pub tasks: Vec<TaskStatus>,
}

/// `admin/tasks/run` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRunRequest {
    pub task_name: String,
    /// Answer only when the run has finished, with its report.
    #[serde(default)]
    pub wait: bool,
}

/// `admin/tasks/run` answer: the report when waited for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRunResponse {
    pub task_name: String,
    pub report: Option<RunReport>,
}
