//! Opening a node: data directory, database, stores and the first admin account.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Node;
use crate::accounts::{
    PeerKey, PeerKeyError, PeerKeyring, generate_password, hash_password, key_file_is_exposed,
};
use crate::config::{Config, StoreConfig};
use crate::db::repo::{librarians, next_id, stores, users};
use crate::db::{Db, DbError, OpenError};
use crate::model::{AuthLevel, StoreState, User};
use crate::store::{Store, Stores};

/// File in the data directory holding the generated admin password (mode 0600).
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// File in the data directory holding the address the node listens on, so that the
/// CLI can find a node started with `--listen 127.0.0.1:0`.
pub const LISTEN_ADDRESS_FILE: &str = "listen-address";
/// Directory of the data directory where `quire tls init` writes its CA and the
/// node's certificate.
pub const TLS_DIR: &str = "tls";
/// The CA certificate in [`TLS_DIR`], which local CLI commands trust.
pub const CA_CERT_FILE: &str = "ca.pem";
/// Name of the account created on first start.
pub const ADMIN_USER: &str = "admin";

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "the data directory {0} is not a directory; point --data-dir (QUIRE_DATA_DIR, \
         `data_dir`) at a directory, or at a path that does not exist yet"
    )]
    NotADirectory(PathBuf),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare store '{store}' at {path}: {source}")]
    Store {
        store: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot write the admin password file {path}: {source}")]
    AdminPassword {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} (setting `peer_key_file`)")]
    PeerKey(PeerKeyError),
}

/// Opens the node described by `config`. On first start this creates the `admin`
/// account and returns its generated password (also written to
/// `<data_dir>/admin-password`).
pub fn open_node(mut config: Config) -> Result<(Arc<Node>, Option<String>), SetupError> {
    let data_dir_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SetupError::DataDir { path, source }
    };
    if fs::metadata(&config.data_dir).is_ok_and(|found| !found.is_dir()) {
        return Err(SetupError::NotADirectory(config.data_dir.clone()));
    }
    // Created 0750 (under the umask), so a new directory needs no narrowing.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&config.data_dir)
        .map_err(data_dir_error(&config.data_dir))?;
    restrict_data_dir(&config.data_dir).map_err(data_dir_error(&config.data_dir))?;
    config.data_dir =
        fs::canonicalize(&config.data_dir).map_err(data_dir_error(&config.data_dir))?;
    let db = Db::open(&config.database_path())?;
    let stores = open_stores(&config, &db)?;
    let admin_password = ensure_admin(&config, &db)?;
    let peer_keyring = open_peer_keyring(&config, &db)?;
    Ok((Node::new(config, db, stores, peer_keyring), admin_password))
}

/// The data directory holds the database, the admin password and the peer key:
/// at most 0750 (the group may reach a store inside it, never write; others
/// nothing). A directory that is more open, new or not, is narrowed to that; a
/// narrower one is left as it is.
fn restrict_data_dir(path: &Path) -> std::io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let narrowed = mode & !0o027;
    if narrowed == mode {
        return Ok(());
    }
    let shown = |mode: u32| format!("{mode:o}");
    match fs::set_permissions(path, fs::Permissions::from_mode(narrowed)) {
        Ok(()) => tracing::info!(
            path = %path.display(),
            from = shown(mode),
            to = shown(narrowed),
            "narrowed the data directory's permissions"
        ),
        // Not ours to change (another owner): say so, and run.
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => tracing::warn!(
            path = %path.display(),
            mode = shown(mode),
            %error,
            "the data directory is open to others and cannot be narrowed; make it 0750"
        ),
        Err(error) => return Err(error),
    }
    Ok(())
}

/// Loads the peer key, generating it when its file does not exist yet. A missing
/// file while peers have sealed credentials is not replaced (that would orphan them
/// for good): the node starts, warns, and using such a peer says what to do.
fn open_peer_keyring(config: &Config, db: &Db) -> Result<PeerKeyring, SetupError> {
    let path = config.resolve(&config.peer_key_file);
    let key = match PeerKey::load(&path) {
        Ok(key) => key,
        Err(PeerKeyError::Missing { .. }) => {
            let sealed = db
                .read(librarians::all_librarians)?
                .into_iter()
                .filter(|peer| !peer.sealed_authenticator.is_empty())
                .count();
            if sealed > 0 {
                let error = PeerKeyError::Missing { path: path.clone() };
                tracing::warn!(peers = sealed, "{error}");
                return Ok(PeerKeyring::missing(&path));
            }
            PeerKey::create(&path).map_err(SetupError::PeerKey)?
        }
        Err(error) => return Err(SetupError::PeerKey(error)),
    };
    if key_file_is_exposed(&path) {
        tracing::warn!(
            path = %path.display(),
            "the peer key file is readable by other users; run chmod 600 on it"
        );
    }
    Ok(PeerKeyring::loaded(key))
}

fn open_stores(config: &Config, db: &Db) -> Result<Stores, SetupError> {
    let known = db.read(stores::all_stores)?;
    let mut opened = Vec::new();
    for store_config in config.effective_stores() {
        let state = match known.iter().find(|s| s.name == store_config.name) {
            Some(state) => state.clone(),
            None => register_store(db, &store_config)?,
        };
        opened.push(prepare_store(config, &store_config, &state)?);
    }
    Ok(Stores::new(opened))
}

fn register_store(db: &Db, store_config: &StoreConfig) -> Result<StoreState, SetupError> {
    let name = store_config.name.clone();
    let enabled = store_config.enabled;
    let state = db.write_blocking(move |txn| {
        let state = StoreState {
            id: next_id(txn, "stores")?,
            name,
            enabled,
        };
        stores::put_store(txn, &state)?;
        Ok(Ok::<_, DbError>(state))
    })?;
    Ok(state)
}

/// Resolves a store's paths and creates its directories. The root of a
/// non-ingestable store (a drive) is never created: a missing root means the drive
/// is away, and the store is simply unavailable.
fn prepare_store(
    config: &Config,
    store_config: &StoreConfig,
    state: &StoreState,
) -> Result<Store, SetupError> {
    let root = config.resolve(&store_config.path);
    let staging = match &store_config.staging_path {
        Some(path) => config.resolve(path),
        None => root.join(".quire-staging"),
    };
    let failure = |path: &Path| {
        let (store, path) = (store_config.name.clone(), path.to_path_buf());
        move |source| SetupError::Store {
            store,
            path,
            source,
        }
    };
    if store_config.ingestable || root.is_dir() {
        fs::create_dir_all(&root).map_err(failure(&root))?;
        fs::create_dir_all(&staging).map_err(failure(&staging))?;
    }
    let canonical = |path: PathBuf| fs::canonicalize(&path).unwrap_or(path);
    Ok(Store::new(
        state.id,
        store_config,
        canonical(root),
        canonical(staging),
        state.enabled,
    ))
}

/// Creates the `admin` account when the node has no accounts at all.
fn ensure_admin(config: &Config, db: &Db) -> Result<Option<String>, SetupError> {
    if !db.read(users::all_users)?.is_empty() {
        return Ok(None);
    }
    let password = generate_password();
    let path = config.data_dir.join(ADMIN_PASSWORD_FILE);
    write_secret(&path, &password).map_err(|source| SetupError::AdminPassword {
        path: path.clone(),
        source,
    })?;
    let user = User {
        username: ADMIN_USER.into(),
        password_hash: hash_password(&password),
        level: AuthLevel::Admin,
    };
    db.write_blocking(move |txn| {
        if users::get_user(txn, ADMIN_USER)?.is_none() {
            users::put_user(txn, &user)?;
        }
        Ok(Ok::<_, DbError>(()))
    })?;
    Ok(Some(password))
}

/// Writes a secret to a new file readable only by its owner.
pub fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

/// Records the address the node listens on, for the CLI to find: `host:port` for
/// HTTP, `https://host:port` for HTTPS; loopback for a node on every interface.
pub fn write_listen_address(
    data_dir: &Path,
    address: std::net::SocketAddr,
    https: bool,
) -> std::io::Result<()> {
    let path = data_dir.join(LISTEN_ADDRESS_FILE);
    let temporary = data_dir.join(format!("{LISTEN_ADDRESS_FILE}.tmp"));
    let scheme = if https { "https://" } else { "" };
    // A node listening on every interface is reached locally by loopback, a name
    // its certificate from `quire tls init` holds.
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(match address.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    fs::write(&temporary, format!("{scheme}{address}\n"))?;
    fs::rename(temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_on_every_interface_is_recorded_at_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let read = || fs::read_to_string(dir.path().join(LISTEN_ADDRESS_FILE)).unwrap();
        write_listen_address(dir.path(), "0.0.0.0:21108".parse().unwrap(), true).unwrap();
        assert_eq!(read(), "https://127.0.0.1:21108\n");
        write_listen_address(dir.path(), "[::]:7".parse().unwrap(), false).unwrap();
        assert_eq!(read(), "[::1]:7\n");
        write_listen_address(dir.path(), "10.1.2.3:8".parse().unwrap(), false).unwrap();
        assert_eq!(read(), "10.1.2.3:8\n");
    }
}
