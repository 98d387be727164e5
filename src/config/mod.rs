//! Node configuration: built-in defaults < TOML file < `QUIRE_*` environment
//! variables < command-line flags, merged with figment and then validated.
//!
//! With no file at all the node runs on the embedded default: data in
//! `./quire-data`, one ingestable store inside it, HTTP on 127.0.0.1:21108.

mod dropbox;
mod duration;
mod figment_error;
mod http;
pub mod tasks;
mod tls;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use dropbox::{AfterIngest, DropboxConfig};
pub use duration::parse_duration;
use duration::serde_duration;
pub use http::HttpConfig;
pub use tls::TlsConfig;
pub use validate::ConfigError;

use tasks::TaskSpec;
use tasks::{RawTasks, merge_raw, read_background_file};

/// Default HTTP listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:21108";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "quire-data";
/// The configuration file the Debian package installs.
pub const PACKAGED_CONFIG: &str = "/etc/quire/quire.toml";
/// Settings that may be given as `QUIRE_<KEY>` environment variables.
const ENV_KEYS: [&str; 12] = [
    "name",
    "description",
    "listen",
    "data_dir",
    "log_format",
    "maximal_upload_size_bytes",
    "max_search_results",
    "checksum_timeout",
    "staging_expiry",
    "credential_cache_seconds",
    "local_hostnames",
    "peer_key_file",
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The complete node configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The librarian name peers know this node by.
    pub name: String,
    /// Free text returned by `ping/`.
    pub description: String,
    /// `host:port` for HTTP.
    pub listen: String,
    /// Where the database, generated secrets and the default store live.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Largest upload accepted, in bytes.
    pub maximal_upload_size_bytes: u64,
    /// Most results any search returns.
    pub max_search_results: usize,
    /// A recorded checksum younger than this is trusted by `validate/file`.
    #[serde(with = "serde_duration")]
    pub checksum_timeout: Duration,
    /// An upload left untouched for this long is failed and its staging removed.
    #[serde(with = "serde_duration")]
    pub staging_expiry: Duration,
    /// How long a verified password is remembered, so that only a client's first
    /// request pays for argon2.
    pub credential_cache_seconds: u64,
    /// Host names advertised by the `local` transfer provider (clients on these hosts
    /// share the node's filesystem). Default: this machine's host name.
    pub local_hostnames: Option<Vec<String>>,
    /// Directories under which the `local` provider may write a peer's staging
    /// (a filesystem shared with it). Empty (the default): this node never writes
    /// outside its stores and data directory, and sends over the network instead.
    #[serde(default)]
    pub local_send_roots: Vec<PathBuf>,
    /// File holding the key that seals peer librarians' credentials (generated on
    /// first start, mode 0600; keep a backup, never in the database's backup).
    /// Relative paths are taken from the data directory.
    pub peer_key_file: PathBuf,
    /// The node's stores. Empty means one ingestable store in `<data_dir>/store`.
    pub stores: Vec<StoreConfig>,
    /// Background tasks as `[[tasks.<type>]]` tables (see `config::tasks`).
    #[serde(default)]
    pub tasks: RawTasks,
    /// A Librarian-style background JSON file with more task entries
    /// (`--background-config`, `LIBRARIAN_BACKGROUND_CONFIG`).
    #[serde(default)]
    pub background_config: Option<PathBuf>,
    /// The parsed tasks of `tasks` and `background_config`, filled by validation.
    #[serde(skip)]
    pub task_specs: Vec<TaskSpec>,
    /// Directories whose files are ingested automatically (`[[dropbox]]` tables).
    #[serde(default)]
    pub dropbox: Vec<DropboxConfig>,
    /// Timeouts, the connection cap and login limits (`[http]`).
    #[serde(default)]
    pub http: HttpConfig,
    /// HTTPS: the node's certificate, and authorities trusted for peers (`[tls]`).
    #[serde(default)]
    pub tls: TlsConfig,
    /// Failed attempts at moving a send-queue batch before its transfers fail.
    #[serde(default = "default_send_retries")]
    pub max_async_send_retries: u32,
    /// Send-queue batches whose bytes may be on their way at once (moved but not yet
    /// reported STAGED to their destination).
    #[serde(default = "default_inflight")]
    pub max_async_inflight_transfers: usize,
    /// The wait before a failed send-queue batch is tried again; it doubles with
    /// each failed attempt, up to an hour.
    #[serde(with = "serde_duration", default = "default_send_backoff")]
    pub send_retry_backoff: Duration,
}

fn default_send_backoff() -> Duration {
    Duration::from_secs(30)
}

fn default_send_retries() -> u32 {
    3
}

fn default_inflight() -> usize {
    64
}

/// One `[[stores]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub name: String,
    /// Root directory; each file lives at `<path>/<name>`. Relative paths are taken
    /// from the data directory.
    pub path: PathBuf,
    /// Where uploads are staged; must be on the same filesystem as `path`.
    /// Default: `<path>/.quire-staging`.
    #[serde(default)]
    pub staging_path: Option<PathBuf>,
    /// Whether uploads may be placed here.
    #[serde(default = "default_true")]
    pub ingestable: bool,
    /// The store reports itself full once this fraction of its disk is used.
    #[serde(default = "default_full_fraction")]
    pub report_full_fraction: f64,
    /// Whether the store starts enabled the first time the node sees it.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Make staging directories group-writable, so clients in the node's group can
    /// copy into them.
    #[serde(default)]
    pub group_write_after_stage: bool,
    /// Take ownership (chown to the node's user) of committed files.
    #[serde(default)]
    pub own_after_commit: bool,
    /// Remove write permission from committed files.
    #[serde(default = "default_true")]
    pub readonly_after_commit: bool,
}

fn default_true() -> bool {
    true
}

fn default_full_fraction() -> f64 {
    1.0
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: default_node_name(),
            description: "quire data-management node".into(),
            listen: DEFAULT_LISTEN.into(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_format: LogFormat::Text,
            maximal_upload_size_bytes: 1 << 40,
            max_search_results: 2048,
            checksum_timeout: Duration::from_secs(7 * 86_400),
            staging_expiry: Duration::from_secs(86_400),
            credential_cache_seconds: 300,
            local_hostnames: None,
            local_send_roots: Vec::new(),
            peer_key_file: PathBuf::from("peer-secret.key"),
            stores: Vec::new(),
            tasks: RawTasks::new(),
            background_config: None,
            task_specs: Vec::new(),
            dropbox: Vec::new(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            max_async_send_retries: default_send_retries(),
            max_async_inflight_transfers: default_inflight(),
            send_retry_backoff: default_send_backoff(),
        }
    }
}

/// This machine's host name (used as the default node name and local host name).
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn default_node_name() -> String {
    host_name()
}

/// Where configuration comes from, besides defaults and the environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// A TOML file (`--config`, `QUIRE_CONFIG`).
    pub file: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--background-config` / `LIBRARIAN_BACKGROUND_CONFIG`.
    pub background_config: Option<PathBuf>,
}

impl Config {
    /// Merges every source and validates the result.
    pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = &sources.file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.clone()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("QUIRE_").only(&ENV_KEYS));
        if let Some(data_dir) = &sources.data_dir {
            figment = figment.merge(Serialized::default("data_dir", data_dir));
        }
        if let Some(listen) = &sources.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(background) = &sources.background_config {
            figment = figment.merge(Serialized::default("background_config", background));
        }
        let mut config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        if let Some(background) = &config.background_config {
            let more = read_background_file(background)
                .map_err(|problem| ConfigError::invalid("background_config", problem))?;
            merge_raw(&mut config.tasks, more);
        }
        config.validated()
    }

    /// The data directory a configuration file sets, if it can be read and sets
    /// one (the CLI's way to find a node started with that file).
    pub fn data_dir_of(file: &Path) -> Option<PathBuf> {
        if !file.is_file() {
            return None;
        }
        Figment::from(Toml::file_exact(file))
            .extract_inner::<PathBuf>("data_dir")
            .ok()
    }

    /// Parses configuration from TOML text alone (over the defaults).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(ConfigError::from_figment)?;
        config.validated()
    }

    /// The stores to run: the configured ones, or the embedded default store.
    pub fn effective_stores(&self) -> Vec<StoreConfig> {
        if !self.stores.is_empty() {
            return self.stores.clone();
        }
        vec![StoreConfig {
            name: "main".into(),
            path: PathBuf::from("store"),
            staging_path: None,
            ingestable: true,
            report_full_fraction: 1.0,
            enabled: true,
            group_write_after_stage: false,
            own_after_commit: false,
            readonly_after_commit: true,
        }]
    }

    /// A path from the configuration, taken relative to the data directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        }
    }

    /// Path of the database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("quire.redb")
    }

    /// Host names the `local` provider advertises.
    pub fn advertised_hostnames(&self) -> Vec<String> {
        self.local_hostnames
            .clone()
            .unwrap_or_else(|| vec![host_name()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layer reads the configuration, so it may know none of them (a task's
    /// settings once lived in `tasks/` and made a cycle through `node`).
    #[test]
    fn the_configuration_imports_nothing_but_the_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            seen += 1;
            for (at, _) in text.match_indices("crate::") {
                let module: String = text[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                // (This test's own message has no module name after it.)
                assert!(
                    module.is_empty() || module == "config" || module == "model",
                    "{} imports crate::{module}",
                    path.display()
                );
            }
        }
        assert!(seen >= 7, "read {seen} files of {}", dir.display());
    }

    #[test]
    fn embedded_default_is_valid_and_has_one_ingestable_store() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN);
        let stores = config.effective_stores();
        assert_eq!(stores.len(), 1);
        assert!(stores[0].ingestable);
    }

    #[test]
    fn sample_configuration_parses() {
        let text = include_str!("../../fixtures/quire.toml");
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.name, "observatory-site-a");
        assert_eq!(config.stores.len(), 2);
        assert!(config.tls.serves_https());
        assert_eq!(config.tls.ca_file, Some(PathBuf::from("tls/ca.pem")));
        assert_eq!(config.checksum_timeout, Duration::from_secs(86_400));
        assert!(!config.stores[1].ingestable);
        assert_eq!(config.stores[1].report_full_fraction, 0.95);
        assert_eq!(config.task_specs.len(), 1);
        assert_eq!(config.task_specs[0].name, "weekly-integrity");
        assert_eq!(config.task_specs[0].every, Duration::from_secs(7 * 86_400));
        let dropbox = &config.dropbox[0];
        assert_eq!(
            (dropbox.after_ingest, dropbox.prefix.as_str()),
            (AfterIngest::Move, "camera-1")
        );
        assert_eq!(dropbox.settle_seconds, 10.0);
    }

    #[test]
    fn invalid_settings_name_the_key() {
        let error = Config::from_toml("max_search_results = \"many\"").unwrap_err();
        assert!(error.to_string().contains("max_search_results"), "{error}");
        let error = Config::from_toml("colour = \"blue\"").unwrap_err();
        assert!(error.to_string().contains("colour"), "{error}");
        let error = Config::from_toml(
            "[[stores]]\nname = \"a\"\npath = \"/x\"\nreport_full_fraction = 1.5\n",
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("report_full_fraction"),
            "{error}"
        );
        let error = Config::from_toml("listen = \"nowhere\"").unwrap_err();
        assert!(error.to_string().contains("listen"), "{error}");
    }

    #[test]
    fn keys_read_as_written_and_a_near_miss_is_corrected() {
        let error = Config::from_toml("[[stores]]\nname = \"a\"\npath = \"/x\"\nenable = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`stores[0].enable`"), "{error}");
        assert!(error.contains("did you mean `enabled`?"), "{error}");
        assert!(!error.contains("default."), "{error}");
    }
}
