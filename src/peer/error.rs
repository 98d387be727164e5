//! Failures talking to a librarian.

use reqwest::StatusCode;

/// Why a call to a librarian failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The librarian answered with an error status.
    #[error("{route}: HTTP {status}: {reason}{}", remedy_suffix(.remedy))]
    Refused {
        route: String,
        status: StatusCode,
        reason: String,
        remedy: String,
    },
    /// The librarian could not be reached or the connection broke.
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The answer was not what the protocol promises.
    #[error("{route}: unexpected answer: {message}")]
    Decode { route: String, message: String },
    /// No peer librarian of that name is registered on this node.
    #[error(
        "no peer librarian named '{name}' is known to this node; add it with \
         `quire librarians add` (admin/librarians/add)"
    )]
    UnknownPeer { name: String },
    /// The peer is registered, but this node cannot build a working client for it
    /// (credentials that cannot be unsealed, an unusable stored address).
    #[error("cannot contact peer '{peer}': {problem}")]
    Unusable { peer: String, problem: String },
    /// The peer registry could not be read.
    #[error("cannot read the peer registry: {0}")]
    Registry(#[from] crate::db::DbError),
}

fn remedy_suffix(remedy: &str) -> String {
    if remedy.is_empty() {
        String::new()
    } else {
        format!(" ({remedy})")
    }
}

impl PeerError {
    /// The HTTP status, when the librarian answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            PeerError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether retrying the same call later could succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            PeerError::Unreachable { .. } => true,
            PeerError::Refused { status, .. } => status.is_server_error(),
            PeerError::Decode { .. }
            | PeerError::UnknownPeer { .. }
            | PeerError::Unusable { .. }
            | PeerError::Registry(_) => false,
        }
    }
}
