//! Wire types of the Librarian v2 protocol (and quire's additions), shared by the
//! HTTP handlers and by quire's own client. Field names and optionality follow
//! `librarian-v2-openapi.json`; request fields with defaults may be omitted.

pub mod admin;
pub mod checkin;
pub mod clone;
pub mod corrupt;
pub mod errors;
pub mod librarians;
pub mod manifest;
pub mod ping;
pub mod search;
pub mod tasks;
pub mod transfers;
pub mod upload;
pub mod users;
pub mod validate;

use serde::{Deserialize, Serialize};

/// The usual failure body of most routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedResponse {
    pub reason: String,
    #[serde(default)]
    pub suggested_remedy: String,
}

/// Prefix of every route.
pub const API_PREFIX: &str = "/api/v2";

/// The request header with which quire announces itself to a peer (a Librarian
/// never sends it); its value is the sender's version. A destination offers
/// quire's own transfer provider only to callers that send it.
pub const QUIRE_NODE_HEADER: &str = "x-quire-node";
