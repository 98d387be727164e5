//! The running node: configuration, database, stores and in-memory caches shared by
//! the HTTP handlers and the background work, plus start-up and recovery.

mod claims;
mod recovery;
mod reservations;
mod setup;
mod staged;

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{BucketRule, CredentialCache, PeerKeyring};
use crate::config::Config;
use crate::db::Db;
use crate::store::Stores;
use crate::tasks::Tasks;

pub use claims::{Busy, Claim, NameClaims};
pub use recovery::{RecoveryMode, RecoveryReport, recover};
pub use reservations::{Reservations, Reserved};
pub use setup::{
    ADMIN_PASSWORD_FILE, ADMIN_USER, CA_CERT_FILE, LISTEN_ADDRESS_FILE, SetupError, TLS_DIR,
    open_node, write_listen_address as setup_write_listen_address, write_secret,
};
pub use staged::{StagedDigest, StagedDigests};

/// Everything a request or a task needs; shared behind an `Arc`.
pub struct Node {
    pub config: Config,
    pub db: Db,
    pub stores: Stores,
    /// Recently verified credentials.
    pub credentials: CredentialCache,
    /// Digests computed while the network provider received staged bytes.
    pub staged_digests: StagedDigests,
    /// The background tasks and what they last did (their loops are started by
    /// `quire serve`).
    pub tasks: Tasks,
    /// The key that seals peer librarians' credentials (its file may be missing).
    pub peer_keyring: PeerKeyring,
    /// Names being placed in a store now (nothing nested may be placed meanwhile).
    pub claims: Arc<NameClaims>,
    /// Space promised to staged uploads.
    pub reservations: Reservations,
}

impl Node {
    /// Bundles the parts of a node.
    pub fn new(config: Config, db: Db, stores: Stores, peer_keyring: PeerKeyring) -> Arc<Node> {
        let limits = &config.http;
        let credentials = CredentialCache::with_limits(
            Duration::from_secs(config.credential_cache_seconds),
            BucketRule {
                burst: limits.login_address_burst,
                refill: limits.login_address_refill,
            },
            BucketRule {
                burst: limits.login_account_burst,
                refill: limits.login_account_refill,
            },
        );
        let tasks = Tasks::new(config.task_specs.clone());
        Arc::new(Node {
            tasks,
            config,
            db,
            stores,
            credentials,
            staged_digests: StagedDigests::default(),
            peer_keyring,
            claims: Arc::default(),
            reservations: Reservations::default(),
        })
    }
}

/// A node on the embedded defaults with its data in `<dir>/data` (unit tests).
#[cfg(test)]
pub fn open_test_node(dir: &std::path::Path) -> Arc<Node> {
    let mut config = Config::from_toml("").expect("the empty configuration is valid");
    config.data_dir = dir.join("data");
    open_node(config).expect("a test node opens").0
}
