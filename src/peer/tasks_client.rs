//! Client methods for quire's task routes (`admin/tasks/list`, `admin/tasks/run`).

use super::{LibrarianClient, PeerError};
use crate::protocol::tasks::{TaskListResponse, TaskRunRequest, TaskRunResponse};

impl LibrarianClient {
    /// `admin/tasks/list`.
    pub async fn tasks(&self) -> Result<TaskListResponse, PeerError> {
        self.post("admin/tasks/list", &serde_json::json!({})).await
    }

    /// `admin/tasks/run`; with `wait`, the answer comes when the run has finished.
    pub async fn run_task(
        &self,
        task_name: &str,
        wait: bool,
    ) -> Result<TaskRunResponse, PeerError> {
        let request = TaskRunRequest {
            task_name: task_name.to_string(),
            wait,
        };
        self.post("admin/tasks/run", &request).await
    }
}
