//! The peer registry as the rest of the node uses it: which librarians are known,
//! and a client for one of them with its unsealed credentials.
//!
//! Invariant: credentials are unsealed only here, only into a client, and never
//! logged; a peer whose credentials cannot be unsealed yields an error that says
//! what to do, never a client with garbage credentials.

use std::time::Duration;

use super::address::{peer_base_url, split_authenticator};
use super::{Connection, LibrarianClient, PeerError};
use crate::db::DbError;
use crate::db::repo::librarians;
use crate::model::Librarian;
use crate::node::Node;

/// How long a call to a peer may stay silent before it fails.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a reachability ping may take in all.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for the known peer `name`, with its unsealed credentials. Whether
/// transfers to it are enabled is the caller's business (see
/// [`Librarian::transfers_enabled`]).
pub fn client_for(node: &Node, name: &str) -> Result<LibrarianClient, PeerError> {
    let peer = node
        .db
        .read(|tx| librarians::get_librarian(tx, name))?
        .ok_or_else(|| PeerError::UnknownPeer {
            name: name.to_string(),
        })?;
    client_for_peer(node, &peer)
}

/// A client for `peer` (a record already read), with its unsealed credentials.
pub fn client_for_peer(node: &Node, peer: &Librarian) -> Result<LibrarianClient, PeerError> {
    let unusable = |problem: String| PeerError::Unusable {
        peer: peer.name.clone(),
        problem,
    };
    let key = node
        .peer_keyring
        .key()
        .map_err(|e| unusable(e.to_string()))?;
    let authenticator = key
        .unseal(&peer.name, &peer.sealed_authenticator)
        .map_err(|e| unusable(e.to_string()))?;
    let (user, password) = split_authenticator(&authenticator).ok_or_else(|| {
        unusable("its stored authenticator is not user:password; remove and re-add it".into())
    })?;
    let url = peer_base_url(&peer.url, i64::from(peer.port)).map_err(unusable)?;
    connect(node, url, user, password)
}

/// A client for a peer at `base_url` (`scheme://host:port[/path]`); over HTTPS it
/// trusts the system's roots and the node's `tls.ca_file`.
pub fn connect(
    node: &Node,
    base_url: String,
    user: &str,
    password: &str,
) -> Result<LibrarianClient, PeerError> {
    LibrarianClient::new(
        Connection {
            url: base_url,
            user: user.to_string(),
            password: password.to_string(),
            ca_file: node
                .config
                .tls
                .ca_file
                .as_ref()
                .map(|f| node.config.resolve(f)),
        },
        PEER_REQUEST_TIMEOUT,
    )
}

/// The first of `names` that is a known peer (e.g. a transfer's source, then its
/// uploader), read in one transaction.
pub fn known_peer(node: &Node, names: &[&str]) -> Result<Option<Librarian>, DbError> {
    node.db.read(|tx| {
        for name in names {
            if let Some(peer) = librarians::get_librarian(tx, name)? {
                return Ok(Some(peer));
            }
        }
        Ok(None)
    })
}

/// What pinging a peer showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingOutcome {
    /// It answered `ping/` with a well-formed answer within [`PING_TIMEOUT`].
    pub answered: bool,
    /// Whether `ping/logged` accepted the credentials; `None` when not known (no
    /// answer, or a failure other than a refusal).
    pub credentials_accepted: Option<bool>,
}

/// Pings the peer. Like the reference, `answered` is about reachability only
/// (`ping/` is open to every caller); the credentials are then tried with
/// `ping/logged`, and a refusal is logged, since every later call would fail.
pub async fn ping_peer(peer_name: &str, client: &LibrarianClient) -> PingOutcome {
    let mut outcome = PingOutcome {
        answered: false,
        credentials_accepted: None,
    };
    match tokio::time::timeout(PING_TIMEOUT, client.ping()).await {
        Ok(Ok(_)) => outcome.answered = true,
        Ok(Err(error)) => {
            tracing::info!(peer = peer_name, %error, "peer did not answer ping/");
            return outcome;
        }
        Err(_) => {
            tracing::info!(peer = peer_name, "peer did not answer ping/ in time");
            return outcome;
        }
    }
    outcome.credentials_accepted =
        match tokio::time::timeout(PING_TIMEOUT, client.ping_logged()).await {
            Ok(Ok(_)) => Some(true),
            Ok(Err(error)) if error.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
                tracing::warn!(
                    peer = peer_name,
                    user = %client.connection().user,
                    "peer answers ping/ but refuses this node's credentials; check the \
                     account and its password on the peer"
                );
                Some(false)
            }
            _ => None,
        };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::PeerKey;
    use crate::config::Config;
    use crate::node::open_node;
    use crate::peer::changes::insert_peer;

    fn peer(name: &str, sealed_authenticator: Vec<u8>) -> Librarian {
        Librarian {
            id: 0,
            name: name.into(),
            url: "http://127.0.0.1".into(),
            port: 9,
            sealed_authenticator,
            last_seen: None,
            transfers_enabled: false,
        }
    }

    #[test]
    fn client_for_unseals_known_peers_and_explains_what_it_cannot_use() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let (node, _) = open_node(config).unwrap();
        let key = node.peer_keyring.key().unwrap();
        let good = peer("site-b", key.seal("site-b", "site-a:pass:with:colons"));
        let foreign = PeerKey::create(&dir.path().join("other.key")).unwrap();
        let stranger = peer("site-c", foreign.seal("site-c", "u:p"));
        node.db
            .write_blocking(move |txn| {
                insert_peer(txn, good)?;
                insert_peer(txn, stranger)?;
                Ok(Ok::<_, DbError>(()))
            })
            .unwrap();

        // Transfers being disabled is not client_for's concern.
        let client = client_for(&node, "site-b").unwrap();
        assert_eq!(client.connection().url, "http://127.0.0.1:9");
        assert_eq!(client.connection().user, "site-a");
        assert_eq!(client.connection().password, "pass:with:colons");

        let Err(unknown) = client_for(&node, "nobody") else {
            panic!("an unknown peer has no client");
        };
        assert!(
            matches!(unknown, PeerError::UnknownPeer { .. }),
            "{unknown}"
        );
        let Err(sealed_elsewhere) = client_for(&node, "site-c") else {
            panic!("credentials sealed with another key cannot be used");
        };
        assert!(
            matches!(sealed_elsewhere, PeerError::Unusable { .. })
                && sealed_elsewhere.to_string().contains("another key"),
            "{sealed_elsewhere}"
        );

        let first = known_peer(&node, &["nobody", "site-c", "site-b"]).unwrap();
        assert_eq!(first.map(|p| p.name).as_deref(), Some("site-c"));
        assert!(known_peer(&node, &["nobody"]).unwrap().is_none());
    }
}
