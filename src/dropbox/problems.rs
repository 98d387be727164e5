//! Files that cannot be ingested: each distinct problem becomes one error record
//! (visible through `search/error`) and one log line, not one per retry.
//!
//! Invariants: a problem is raised again only once its earlier record was
//! cleared; problems of the whole drop-box (no store has room, the database
//! failed) are one problem, not one per waiting file; a message never holds a
//! value that changes between retries (free space, counts), so a retry that meets
//! the same problem is recognised as such.

use std::collections::HashMap;
use std::path::Path;

use crate::db::DbError;
use crate::db::repo::errors;
use crate::model::{ErrorCategory, ErrorSeverity};
use crate::node::Node;

/// The `caller` of every error a drop-box raises.
pub const CALLER: &str = "dropbox";

/// Why a file was not ingested. It stays in the drop-box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Another file is recorded (or stored) under the name, with other bytes.
    NameTaken {
        name: String,
    },
    /// The path gives no valid name.
    BadName {
        why: String,
    },
    /// A symbolic link (or a path through one), device, socket or FIFO: never
    /// opened, never followed.
    NotRegular {
        what: &'static str,
    },
    TooLarge {
        size: u64,
        max: u64,
    },
    Unreadable {
        error: String,
    },
    /// No store is ingestable, enabled and available.
    NoStore,
    /// The pinned store cannot take files now.
    StoreUnusable {
        store: String,
        why: &'static str,
    },
    /// No usable store has room for the file.
    NoRoom,
    /// The bytes could not be put in the store.
    Placement {
        error: String,
    },
    /// The database refused or failed.
    Database {
        error: String,
    },
    /// Ingested, but it could not be removed or moved aside.
    AfterIngest {
        error: String,
    },
}

impl Problem {
    fn category(&self) -> ErrorCategory {
        match self {
            Problem::NoRoom => ErrorCategory::StoreFull,
            Problem::NoStore | Problem::StoreUnusable { .. } => ErrorCategory::Configuration,
            Problem::Unreadable { .. } | Problem::Placement { .. } => {
                ErrorCategory::DataAvailability
            }
            Problem::Database { .. } => ErrorCategory::Programming,
            _ => ErrorCategory::Transfer,
        }
    }

    /// Whether the problem is the drop-box's rather than one file's.
    fn is_shared(&self) -> bool {
        matches!(
            self,
            Problem::NoStore
                | Problem::StoreUnusable { .. }
                | Problem::NoRoom
                | Problem::Database { .. }
        )
    }

    fn describe(&self) -> String {
        match self {
            Problem::NameTaken { name } => {
                format!("a different file is already recorded or stored as '{name}'")
            }
            Problem::BadName { why } => format!("it has no valid name: {why}"),
            Problem::NotRegular { what } => format!("it is {what}"),
            Problem::TooLarge { size, max } => {
                format!("its {size} bytes exceed maximal_upload_size_bytes ({max})")
            }
            Problem::Unreadable { error } => format!("it cannot be read: {error}"),
            Problem::NoStore => "no store is ingestable, enabled and available".into(),
            Problem::StoreUnusable { store, why } => format!("store '{store}' {why}"),
            Problem::NoRoom => "no ingestable, enabled store has room for them".into(),
            Problem::Placement { error } => format!("it cannot be put in the store: {error}"),
            Problem::Database { error } => format!("the database failed: {error}"),
            Problem::AfterIngest { error } => {
                format!("it was ingested, but cannot be removed or moved aside: {error}")
            }
        }
    }

    /// The text of the error record: stable for the same problem of the same file.
    pub fn message(&self, dropbox: &Path, file: &Path) -> String {
        if self.is_shared() {
            format!(
                "Drop-box {}: files cannot be ingested: {}; they stay in the drop-box and \
                 are retried.",
                dropbox.display(),
                self.describe()
            )
        } else if let Problem::AfterIngest { .. } = self {
            format!("Drop-box file {}: {}.", file.display(), self.describe())
        } else {
            format!(
                "Drop-box file {} is not ingested: {}; it stays in the drop-box.",
                file.display(),
                self.describe()
            )
        }
    }
}

/// Remembers which problems are already reported.
pub struct Reporter {
    /// Message -> id of its error record, for every problem reported and not
    /// known to be cleared.
    raised: HashMap<String, u64>,
}

impl Reporter {
    /// Starts from the uncleared drop-box errors already in the database, so that
    /// a restart does not report the same problems again.
    pub fn load(node: &Node) -> Result<Reporter, DbError> {
        let raised = node
            .db
            .read(errors::all_errors_newest_first)?
            .into_iter()
            .filter(|e| !e.cleared && e.caller.as_deref() == Some(CALLER))
            .map(|e| (e.message, e.id))
            .collect();
        Ok(Reporter { raised })
    }

    /// Reports `(file, problem)` pairs met by one batch: raises an error and logs
    /// a line for each problem not already reported, in one transaction.
    pub fn report(&mut self, node: &Node, dropbox: &Path, found: &[(&Path, &Problem)]) {
        let mut fresh: Vec<(String, ErrorCategory)> = Vec::new();
        let mut shared_counts: HashMap<String, usize> = HashMap::new();
        for (file, problem) in found {
            let message = problem.message(dropbox, file);
            if problem.is_shared() {
                *shared_counts.entry(message.clone()).or_default() += 1;
            }
            if !fresh.iter().any(|(m, _)| *m == message) {
                fresh.push((message, problem.category()));
            }
        }
        self.forget_cleared(node, &fresh);
        fresh.retain(|(message, _)| !self.raised.contains_key(message));
        if fresh.is_empty() {
            return;
        }
        for (message, _) in &fresh {
            match shared_counts.get(message) {
                Some(files) => tracing::warn!(files, "{message}"),
                None => tracing::warn!("{message}"),
            }
        }
        let to_raise = fresh.clone();
        let raised = node.db.write_blocking(move |txn| {
            let mut ids = Vec::new();
            for (message, category) in to_raise {
                let record = errors::raise(
                    txn,
                    ErrorSeverity::Error,
                    category,
                    message,
                    Some(CALLER.into()),
                )?;
                ids.push((record.message, record.id));
            }
            Ok(Ok::<_, DbError>(ids))
        });
        match raised {
            Ok(ids) => self.raised.extend(ids),
            Err(error) => tracing::error!(%error, "cannot record drop-box errors"),
        }
    }

    /// Drops from memory the reported problems among `messages` whose records an
    /// operator cleared, so that they are reported again.
    fn forget_cleared(&mut self, node: &Node, messages: &[(String, ErrorCategory)]) {
        let known: Vec<(String, u64)> = messages
            .iter()
            .filter_map(|(m, _)| self.raised.get(m).map(|id| (m.clone(), *id)))
            .collect();
        if known.is_empty() {
            return;
        }
        let cleared = node.db.read(|tx| {
            let mut cleared = Vec::new();
            for (message, id) in &known {
                if errors::get_error(tx, *id)?.is_none_or(|e| e.cleared) {
                    cleared.push(message.clone());
                }
            }
            Ok(cleared)
        });
        for message in cleared.unwrap_or_default() {
            self.raised.remove(&message);
        }
    }
}
