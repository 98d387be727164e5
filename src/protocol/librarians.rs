//! `admin/librarians/*`: the peer registry's routes.

use serde::{Deserialize, Serialize};

fn default_true() -> bool {
    true
}

/// `admin/librarians/add` request. `url` is `scheme://host[/path]` without a port;
/// `authenticator` is `user:password` for the account this node uses on the peer.
#[derive(Clone, Serialize, Deserialize)]
pub struct AddLibrarianRequest {
    pub librarian_name: String,
    pub url: String,
    /// Signed so that a bad port gets a reasoned 400 rather than a 422.
    pub port: i64,
    pub authenticator: String,
    /// Ping the peer (`ping/`) first and add it only if it answers.
    #[serde(default = "default_true")]
    pub check_connection: bool,
    /// quire addition: most bytes per second sent to the peer (no cap if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<u64>,
}

impl std::fmt::Debug for AddLibrarianRequest {
    /// Never shows the authenticator (it holds a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddLibrarianRequest")
            .field("librarian_name", &self.librarian_name)
            .field("url", &self.url)
            .field("port", &self.port)
            .field("check_connection", &self.check_connection)
            .field("max_rate", &self.max_rate)
            .finish_non_exhaustive()
    }
}

/// `admin/librarians/add` answer. `ping_success` is null when no ping was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddLibrarianResponse {
    pub success: bool,
    pub already_exists: bool,
    pub ping_success: Option<bool>,
    /// quire addition, present only when the peer answered the ping: whether it
    /// accepted the credentials (`ping/logged`). Clients that do not know the
    /// field ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_accepted: Option<bool>,
}

/// `admin/librarians/list` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListLibrariansRequest {
    /// Ping every peer; `available` is null without a ping.
    #[serde(default = "default_true")]
    pub ping: bool,
}

/// One known peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LibrarianListItem {
    pub name: String,
    pub url: String,
    pub port: u16,
    /// Whether it answered `ping/`; null when not pinged.
    pub available: Option<bool>,
    /// Whether transfers to it are enabled.
    pub enabled: bool,
    /// quire addition: most bytes per second sent to it, if capped (absent when
    /// not, so the answer is the reference's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<u64>,
}

/// `admin/librarians/list` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListLibrariansResponse {
    pub librarians: Vec<LibrarianListItem>,
}

/// `admin/librarians/remove` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveLibrarianRequest {
    pub librarian_name: String,
    /// Cancel the live outgoing transfers to the peer as well.
    #[serde(default)]
    pub remove_outgoing_transfers: bool,
}

/// `admin/librarians/remove` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveLibrarianResponse {
    pub success: bool,
    pub number_of_transfers_removed: u64,
}

/// `admin/librarians/max_rate` (quire) request and answer: the cap on bytes per
/// second sent to a peer; `null` lifts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LibrarianMaxRate {
    pub librarian_name: String,
    pub max_rate: Option<u64>,
}

/// `admin/librarians/transfer_status/change` request and answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LibrarianTransferStatus {
    pub librarian_name: String,
    pub transfers_enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_authenticator() {
        let request = AddLibrarianRequest {
            librarian_name: "site-b".into(),
            url: "http://b".into(),
            port: 21108,
            authenticator: "site-a:s3cret-Pa55".into(),
            check_connection: true,
            max_rate: None,
        };
        for shown in [format!("{request:?}"), format!("{request:#?}")] {
            assert!(shown.contains("site-b"), "{shown}");
            assert!(!shown.contains("s3cret-Pa55"), "{shown}");
        }
    }
}
