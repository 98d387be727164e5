//! `search/error` and `error/clear`.

use serde::{Deserialize, Serialize};

use crate::model::{ErrorCategory, ErrorSeverity, Timestamp};

fn default_max_results() -> usize {
    64
}

/// `search/error` request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorSearchRequest {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub category: Option<ErrorCategory>,
    #[serde(default)]
    pub severity: Option<ErrorSeverity>,
    #[serde(default)]
    pub create_time_window: Option<Vec<Timestamp>>,
    #[serde(default)]
    pub include_resolved: bool,
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}

/// One `search/error` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorSearchResponse {
    pub id: u64,
    pub severity: ErrorSeverity,
    pub category: ErrorCategory,
    pub message: String,
    pub raised_time: Timestamp,
    pub cleared_time: Option<Timestamp>,
    pub cleared: bool,
    pub caller: Option<String>,
}

/// `error/clear` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorClearRequest {
    pub id: u64,
}

/// `error/clear` success.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorClearResponse {
    pub id: u64,
    pub cleared_time: Timestamp,
    pub cleared: bool,
}
