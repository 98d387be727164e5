//! Errors the node records for operators, searchable through `search/error`.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// How bad an error is. On the wire it is the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSeverity {
    Critical,
    Error,
    Warning,
    Info,
}

/// What an error is about. On the wire it is the snake-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    DataIntegrity,
    DataAvailability,
    Configuration,
    StoreFull,
    Programming,
    LibrarianNetworkAvailability,
    Transfer,
}

/// One recorded error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub id: u64,
    pub severity: ErrorSeverity,
    pub category: ErrorCategory,
    pub message: String,
    pub raised_time: Timestamp,
    pub cleared_time: Option<Timestamp>,
    pub cleared: bool,
    /// The component or account that raised it.
    pub caller: Option<String>,
}
