//! `ping/`, `ping/logged`, `ping/admin`.

use serde::{Deserialize, Serialize};

/// The (empty) body of a ping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingRequest {}

/// Who answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingResponse {
    pub name: String,
    pub description: String,
}
