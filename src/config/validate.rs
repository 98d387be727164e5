//! Checks on a merged configuration; each failure names the key and the problem.

use std::collections::HashSet;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

use super::{AfterIngest, Config, DropboxConfig};
use crate::model::validate_file_name;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    pub(super) fn from_figment(error: figment::Error) -> ConfigError {
        ConfigError::Parse(super::figment_error::describe(error))
    }

    pub(super) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl Config {
    pub(super) fn validated(mut self) -> Result<Config, ConfigError> {
        self.http.validate()?;
        self.tls.validate()?;
        self.task_specs = super::tasks::parse_tasks(&self.tasks)
            .map_err(|problem| ConfigError::invalid("tasks", problem))?;
        if self.name.trim().is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        if self.listen.to_socket_addrs().is_err() {
            return Err(ConfigError::invalid(
                "listen",
                format!("'{}' is not a host:port address", self.listen),
            ));
        }
        if self.maximal_upload_size_bytes == 0 {
            return Err(ConfigError::invalid(
                "maximal_upload_size_bytes",
                "must be above 0",
            ));
        }
        if self.max_search_results == 0 {
            return Err(ConfigError::invalid(
                "max_search_results",
                "must be above 0",
            ));
        }
        if self.peer_key_file.as_os_str().is_empty() {
            return Err(ConfigError::invalid("peer_key_file", "must not be empty"));
        }
        let mut names = HashSet::new();
        for (index, store) in self.stores.iter().enumerate() {
            let key = |field: &str| format!("stores[{index}].{field}");
            if store.name.trim().is_empty() {
                return Err(ConfigError::invalid(key("name"), "must not be empty"));
            }
            if !names.insert(store.name.clone()) {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!("'{}' names two stores", store.name),
                ));
            }
            if store.path.as_os_str().is_empty() {
                return Err(ConfigError::invalid(key("path"), "must not be empty"));
            }
            let fraction = store.report_full_fraction;
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(ConfigError::invalid(
                    key("report_full_fraction"),
                    format!("{fraction} is not in (0, 1]"),
                ));
            }
        }
        self.validate_dropboxes()?;
        self.check_task_store_names()?;
        Ok(self)
    }

    /// Every store a task names must be one of the node's stores.
    fn check_task_store_names(&self) -> Result<(), ConfigError> {
        use super::tasks::TaskKind;
        let stores: HashSet<String> = self
            .effective_stores()
            .into_iter()
            .map(|s| s.name)
            .collect();
        for spec in &self.task_specs {
            let named: Vec<(&str, &String)> = match &spec.kind {
                TaskKind::CheckIntegrity(s) => vec![("store_name", &s.store_name)],
                TaskKind::RollingDeletion(s) => vec![("store_name", &s.store_name)],
                TaskKind::CreateLocalClone(s) => std::iter::once(("clone_from", &s.clone_from))
                    .chain(s.clone_to.iter().map(|to| ("clone_to", to)))
                    .collect(),
                TaskKind::SendClone(s) => s
                    .store_preference
                    .iter()
                    .map(|store| ("store_preference", store))
                    .collect(),
                TaskKind::ReceiveClone(_)
                | TaskKind::ConsumeQueue(_)
                | TaskKind::CheckConsumedQueue(_)
                | TaskKind::CorruptionFixer(_)
                | TaskKind::DuplicateRemoteInstanceHypervisor(_)
                | TaskKind::OutgoingTransferHypervisor(_)
                | TaskKind::IncomingTransferHypervisor(_) => Vec::new(),
            };
            for (field, store) in named {
                if !stores.contains(store) {
                    return Err(ConfigError::invalid(
                        format!("tasks.{}.{field}", spec.kind.type_name()),
                        format!(
                            "task '{}' names the store '{store}', which is not one of this \
                             node's stores",
                            spec.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each `[[dropbox]]` table on its own, then the paths of all of them together.
    fn validate_dropboxes(&self) -> Result<(), ConfigError> {
        let mut paths = HashSet::new();
        for (index, dropbox) in self.dropbox.iter().enumerate() {
            let key = |field: &str| format!("dropbox[{index}].{field}");
            self.validate_dropbox(dropbox)
                .map_err(|(field, problem)| ConfigError::invalid(key(field), problem))?;
            if !paths.insert(self.resolve(&dropbox.path)) {
                return Err(ConfigError::invalid(
                    key("path"),
                    format!("{} is watched by two drop-boxes", dropbox.path.display()),
                ));
            }
        }
        Ok(())
    }

    /// One `[[dropbox]]` table; a failure names the field and the problem.
    fn validate_dropbox(&self, dropbox: &DropboxConfig) -> Result<(), (&'static str, String)> {
        if dropbox.path.as_os_str().is_empty() {
            return Err(("path", "must not be empty".into()));
        }
        if !dropbox.prefix.is_empty() {
            validate_file_name(&dropbox.prefix).map_err(|e| ("prefix", e.to_string()))?;
        }
        match (dropbox.after_ingest, &dropbox.move_to) {
            (AfterIngest::Move, None) => {
                return Err((
                    "move_to",
                    "is required with after_ingest = \"move\" (the directory ingested files \
                     are moved to)"
                        .into(),
                ));
            }
            (AfterIngest::Move, Some(to)) if to.as_os_str().is_empty() => {
                return Err(("move_to", "must not be empty".into()));
            }
            (AfterIngest::Move, Some(to)) if self.resolve(to) == self.resolve(&dropbox.path) => {
                return Err(("move_to", "must not be the drop-box itself".into()));
            }
            (AfterIngest::Delete, Some(_)) => {
                return Err((
                    "move_to",
                    "is only used with after_ingest = \"move\"".into(),
                ));
            }
            _ => {}
        }
        for (field, seconds) in [
            ("settle_seconds", dropbox.settle_seconds),
            ("rescan_seconds", dropbox.rescan_seconds),
        ] {
            if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
                return Err((
                    field,
                    format!("{seconds} is not a positive number of seconds"),
                ));
            }
        }
        if dropbox.uploader.trim().is_empty() {
            return Err(("uploader", "must not be empty".into()));
        }
        if dropbox.ignore.iter().any(|pattern| pattern.is_empty()) {
            return Err(("ignore", "patterns must not be empty".into()));
        }
        if let Some(name) = &dropbox.store {
            match self.effective_stores().iter().find(|s| &s.name == name) {
                None => return Err(("store", format!("there is no store called '{name}'"))),
                Some(store) if !store.ingestable => {
                    return Err(("store", format!("store '{name}' is not ingestable")));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}
