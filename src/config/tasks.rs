//! Task entries, from quire's TOML (`[[tasks.<type>]]`) or a Librarian-style
//! background JSON file: one key per task type, each a list of entries with
//! `task_name`, `every`, optional `soft_timeout` and the type's own settings.
//!
//! Parsing is strict: an unknown task type, an unknown field or a type quire does not
//! run stops start-up with a message naming it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::parse_duration;
use crate::model::DeletionPolicy;

/// Task entries as written: type -> list of entries. Kept raw in `Config` so that
/// TOML and JSON share one parser.
pub type RawTasks = BTreeMap<String, Vec<Map<String, Value>>>;

/// Keys of a background file that are settings of the whole file, not task types.
/// They tune task types quire does not run and are accepted for compatibility.
const GLOBAL_KEYS: [&str; 1] = ["max_rsync_retries"];

/// One configured task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Unique among the node's tasks; `quire tasks run NAME` uses it.
    pub name: String,
    /// Time from the start of one run to the start of the next.
    pub every: Duration,
    /// Checked between items: a run past it stops at the next item boundary.
    pub soft_timeout: Option<Duration>,
    pub kind: TaskKind,
}

/// What a task does, with its settings.
#[derive(Debug, Clone)]
pub enum TaskKind {
    CheckIntegrity(CheckIntegrity),
    CreateLocalClone(CreateLocalClone),
    ReceiveClone(ReceiveClone),
    RollingDeletion(RollingDeletion),
    DuplicateRemoteInstanceHypervisor(DuplicateRemoteInstanceHypervisor),
    OutgoingTransferHypervisor(OutgoingTransferHypervisor),
    IncomingTransferHypervisor(IncomingTransferHypervisor),
    SendClone(SendClone),
    ConsumeQueue(ConsumeQueue),
    CheckConsumedQueue(CheckConsumedQueue),
    CorruptionFixer(CorruptionFixer),
}

impl TaskKind {
    /// The task type as written in configuration.
    pub fn type_name(&self) -> &'static str {
        match self {
            TaskKind::CheckIntegrity(_) => "check_integrity",
            TaskKind::CreateLocalClone(_) => "create_local_clone",
            TaskKind::ReceiveClone(_) => "recieve_clone",
            TaskKind::RollingDeletion(_) => "rolling_deletion",
            TaskKind::DuplicateRemoteInstanceHypervisor(_) => {
                "duplicate_remote_instance_hypervisor"
            }
            TaskKind::OutgoingTransferHypervisor(_) => "outgoing_transfer_hypervisor",
            TaskKind::IncomingTransferHypervisor(_) => "incoming_transfer_hypervisor",
            TaskKind::SendClone(_) => "send_clone",
            TaskKind::ConsumeQueue(_) => "consume_queue",
            TaskKind::CheckConsumedQueue(_) => "check_consumed_queue",
            TaskKind::CorruptionFixer(_) => "corruption_fixer",
        }
    }
}

/// `check_integrity`: re-hash a store's instances younger than `age_in_days`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckIntegrity {
    pub store_name: String,
    pub age_in_days: f64,
}

/// `create_local_clone`: copy recent files of one store onto drive stores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLocalClone {
    pub clone_from: String,
    /// One store name or several; the first enabled one with room is filled.
    #[serde(deserialize_with = "one_or_many")]
    pub clone_to: Vec<String>,
    pub age_in_days: f64,
    #[serde(default = "default_files_per_run")]
    pub files_per_run: usize,
    #[serde(default)]
    pub disable_store_on_full: bool,
}

/// `recieve_clone` (also spelled `receive_clone`): ingest staged incoming clones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveClone {
    #[serde(default = "default_disallowed", deserialize_with = "deletion_policy")]
    pub deletion_policy: DeletionPolicy,
    #[serde(default = "default_files_per_run")]
    pub files_per_run: usize,
}

/// `rolling_deletion`: remove local copies that enough peers hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollingDeletion {
    pub store_name: String,
    pub age_in_days: f64,
    #[serde(default = "default_remote_copies")]
    pub number_of_remote_copies: usize,
    #[serde(default = "default_true")]
    pub verify_downstream_checksums: bool,
    #[serde(default = "default_true")]
    pub mark_unavailable: bool,
    #[serde(default = "default_true")]
    pub force_deletion: bool,
}

/// `duplicate_remote_instance_hypervisor`: keep the oldest of duplicate remote
/// instances. No settings of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRemoteInstanceHypervisor {}

/// `outgoing_transfer_hypervisor`: settle outgoing transfers live for longer than
/// `age_in_days` by asking their destination for the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutgoingTransferHypervisor {
    pub age_in_days: f64,
}

/// `incoming_transfer_hypervisor`: settle clones arriving here that have been
/// INITIATED or ONGOING for longer than `age_in_days` by asking their source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingTransferHypervisor {
    pub age_in_days: f64,
}

/// `send_clone`: stage recent files that `destination_librarian` lacks there, and
/// queue their bytes for `consume_queue`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendClone {
    pub destination_librarian: String,
    pub age_in_days: f64,
    /// Send from this store when a file has a copy there.
    #[serde(default)]
    pub store_preference: Option<String>,
    #[serde(default = "default_send_batch_size")]
    pub send_batch_size: usize,
    /// Raise one warning when transfers to the destination stay disabled this long.
    #[serde(default, deserialize_with = "optional_duration")]
    pub warn_disabled_timer: Option<Duration>,
}

/// `consume_queue`: move the bytes of queued batches. No settings of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeQueue {}

/// `check_consumed_queue`: tell destinations that moved batches are STAGED.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConsumedQueue {
    /// The status reported; only STAGED (2) is meaningful between librarians.
    #[serde(default = "default_complete_status")]
    pub complete_status: i64,
}

/// `corruption_fixer`: replace corrupt copies with new ones from the librarian
/// each file came from. No settings of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptionFixer {}

fn default_send_batch_size() -> usize {
    128
}
fn default_complete_status() -> i64 {
    2
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(value) => duration_value(&value)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn default_files_per_run() -> usize {
    1024
}
fn default_remote_copies() -> usize {
    3
}
fn default_true() -> bool {
    true
}
fn default_disallowed() -> DeletionPolicy {
    DeletionPolicy::Disallowed
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) => names,
    })
}

fn deletion_policy<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DeletionPolicy, D::Error> {
    let value = Value::deserialize(deserializer)?;
    match &value {
        Value::Number(n) if n.as_i64() == Some(0) => Ok(DeletionPolicy::Disallowed),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(DeletionPolicy::Allowed),
        Value::String(s) if s.eq_ignore_ascii_case("disallowed") || s == "0" => {
            Ok(DeletionPolicy::Disallowed)
        }
        Value::String(s) if s.eq_ignore_ascii_case("allowed") || s == "1" => {
            Ok(DeletionPolicy::Allowed)
        }
        _ => Err(serde::de::Error::custom(format!(
            "deletion_policy {value} is not 0, 1, \"DISALLOWED\" or \"ALLOWED\""
        ))),
    }
}

/// Reads a Librarian-style background JSON file into raw entries.
pub fn read_background_file(path: &Path) -> Result<RawTasks, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read background configuration {}: {e}",
            path.display()
        )
    })?;
    let document: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| format!("background configuration {}: {e}", path.display()))?;
    let mut raw = RawTasks::new();
    for (key, value) in document {
        if GLOBAL_KEYS.contains(&key.as_str()) {
            continue;
        }
        let entries: Vec<Map<String, Value>> = serde_json::from_value(value).map_err(|e| {
            format!(
                "background configuration {}: `{key}` must be a list of task entries: {e}",
                path.display()
            )
        })?;
        raw.insert(key, entries);
    }
    Ok(raw)
}

/// Adds `more` entries to `raw` (a second source of tasks).
pub fn merge_raw(raw: &mut RawTasks, more: RawTasks) {
    for (kind, entries) in more {
        raw.entry(kind).or_default().extend(entries);
    }
}

/// Turns raw entries into task specs. The error names the task type, the entry and
/// the field at fault.
pub fn parse_tasks(raw: &RawTasks) -> Result<Vec<TaskSpec>, String> {
    let mut specs = Vec::new();
    let mut names = HashSet::new();
    for (type_name, entries) in raw {
        for (index, entry) in entries.iter().enumerate() {
            let at = format!("tasks.{type_name}[{index}]");
            let spec =
                parse_entry(type_name, entry).map_err(|problem| format!("`{at}`: {problem}"))?;
            if !names.insert(spec.name.clone()) {
                return Err(format!(
                    "`{at}`: task_name '{}' is used by two tasks; names must be unique",
                    spec.name
                ));
            }
            specs.push(spec);
        }
    }
    Ok(specs)
}

fn parse_entry(type_name: &str, entry: &Map<String, Value>) -> Result<TaskSpec, String> {
    let mut settings = entry.clone();
    let name = match settings.remove("task_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name,
        Some(_) => return Err("task_name must be a non-empty string".into()),
        None => return Err("missing field `task_name`".into()),
    };
    let every = match settings.remove("every") {
        Some(value) => duration_value(&value).map_err(|e| format!("every: {e}"))?,
        None => return Err(format!("task '{name}': missing field `every`")),
    };
    if every.is_zero() {
        return Err(format!("task '{name}': every must be above zero"));
    }
    let soft_timeout = match settings.remove("soft_timeout") {
        None | Some(Value::Null) => None,
        Some(value) => Some(duration_value(&value).map_err(|e| format!("soft_timeout: {e}"))?),
    };
    let kind = parse_kind(type_name, settings).map_err(|e| format!("task '{name}': {e}"))?;
    Ok(TaskSpec {
        name,
        every,
        soft_timeout,
        kind,
    })
}

fn parse_kind(type_name: &str, settings: Map<String, Value>) -> Result<TaskKind, String> {
    fn settings_of<T: DeserializeOwned>(settings: Map<String, Value>) -> Result<T, String> {
        serde_json::from_value(Value::Object(settings)).map_err(|e| e.to_string())
    }
    Ok(match type_name {
        "check_integrity" => TaskKind::CheckIntegrity(settings_of(settings)?),
        "create_local_clone" => TaskKind::CreateLocalClone(settings_of(settings)?),
        "recieve_clone" | "receive_clone" => TaskKind::ReceiveClone(settings_of(settings)?),
        "rolling_deletion" => TaskKind::RollingDeletion(settings_of(settings)?),
        "duplicate_remote_instance_hypervisor" => {
            TaskKind::DuplicateRemoteInstanceHypervisor(settings_of(settings)?)
        }
        "outgoing_transfer_hypervisor" => {
            TaskKind::OutgoingTransferHypervisor(settings_of(settings)?)
        }
        "incoming_transfer_hypervisor" => {
            TaskKind::IncomingTransferHypervisor(settings_of(settings)?)
        }
        "send_clone" => {
            let settings: SendClone = settings_of(settings)?;
            if settings.send_batch_size == 0 {
                return Err("send_batch_size must be at least 1".into());
            }
            TaskKind::SendClone(settings)
        }
        "consume_queue" => TaskKind::ConsumeQueue(settings_of(settings)?),
        "check_consumed_queue" => {
            let settings: CheckConsumedQueue = settings_of(settings)?;
            if settings.complete_status != 2 {
                return Err(format!(
                    "complete_status {} is not supported; between librarians only 2 (STAGED) is",
                    settings.complete_status
                ));
            }
            TaskKind::CheckConsumedQueue(settings)
        }
        "corruption_fixer" => TaskKind::CorruptionFixer(settings_of(settings)?),
        other => {
            return Err(format!(
                "unknown task type `{other}`; known types: check_integrity, create_local_clone, \
                 recieve_clone (or receive_clone), rolling_deletion, \
                 duplicate_remote_instance_hypervisor, outgoing_transfer_hypervisor, \
                 incoming_transfer_hypervisor, send_clone, consume_queue, check_consumed_queue, \
                 corruption_fixer"
            ));
        }
    })
}

/// `every` and `soft_timeout`: seconds as a number, or any text form of
/// `parse_duration` ("HH:MM:SS", ISO 8601, "1h30m").
fn duration_value(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| *s >= 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{n} is not a number of seconds")),
        Value::String(text) => parse_duration(text),
        other => Err(format!("{other} is not a duration")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawTasks {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn librarian_background_entries_parse() {
        let tasks = parse_tasks(&raw(
            r#"{"check_integrity": [{"task_name": "ci", "every": "01:00:00",
                 "age_in_days": 7, "store_name": "main"}],
                "recieve_clone": [{"task_name": "rc", "every": "PT10M",
                 "deletion_policy": "ALLOWED", "soft_timeout": 30}],
                "receive_clone": [{"task_name": "rc2", "every": 60, "deletion_policy": 0}],
                "create_local_clone": [{"task_name": "cl", "every": "1h",
                 "clone_from": "main", "clone_to": "drive", "age_in_days": 1}]}"#,
        ))
        .unwrap();
        assert_eq!(tasks.len(), 4);
        let ci = tasks.iter().find(|t| t.name == "ci").unwrap();
        assert_eq!(ci.every, Duration::from_secs(3600));
        let rc = tasks.iter().find(|t| t.name == "rc").unwrap();
        assert_eq!(rc.soft_timeout, Some(Duration::from_secs(30)));
        match &rc.kind {
            TaskKind::ReceiveClone(s) => {
                assert_eq!(s.deletion_policy, DeletionPolicy::Allowed);
                assert_eq!(s.files_per_run, 1024);
            }
            other => panic!("{other:?}"),
        }
        let cl = tasks.iter().find(|t| t.name == "cl").unwrap();
        match &cl.kind {
            TaskKind::CreateLocalClone(s) => assert_eq!(s.clone_to, vec!["drive".to_string()]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_types_and_fields_are_named() {
        let error =
            parse_tasks(&raw(r#"{"defrag": [{"task_name": "d", "every": 5}]}"#)).unwrap_err();
        assert!(error.contains("unknown task type `defrag`"), "{error}");
        let error = parse_tasks(&raw(
            r#"{"check_integrity": [{"task_name": "c", "every": 5, "store_name": "s",
                 "age_in_days": 1, "colour": "red"}]}"#,
        ))
        .unwrap_err();
        assert!(error.contains("colour"), "{error}");
        let error =
            parse_tasks(&raw(r#"{"send_clone": [{"task_name": "s", "every": 5}]}"#)).unwrap_err();
        assert!(error.contains("send_clone"), "{error}");
        let error = parse_tasks(&raw(
            r#"{"recieve_clone": [{"task_name": "r", "every": 5, "deletion_policy": 7}]}"#,
        ))
        .unwrap_err();
        assert!(error.contains("deletion_policy"), "{error}");
    }

    #[test]
    fn the_send_path_reads_as_a_librarian_background_file_writes_it() {
        let specs = parse_tasks(&raw(
            r#"{"send_clone": [{"task_name": "to-hub", "every": "00:10:00",
                  "destination_librarian": "hub", "age_in_days": 3,
                  "store_preference": "main", "send_batch_size": 64,
                  "warn_disabled_timer": "P1D"}],
                "consume_queue": [{"task_name": "consume", "every": 60}],
                "check_consumed_queue": [{"task_name": "check", "every": 60,
                  "complete_status": 2}]}"#,
        ))
        .unwrap();
        assert_eq!(specs.len(), 3);
        let send = specs.iter().find(|s| s.name == "to-hub").unwrap();
        match &send.kind {
            TaskKind::SendClone(settings) => {
                assert_eq!(settings.destination_librarian, "hub");
                assert_eq!(settings.send_batch_size, 64);
                assert_eq!(settings.store_preference.as_deref(), Some("main"));
                assert_eq!(
                    settings.warn_disabled_timer,
                    Some(Duration::from_secs(86_400))
                );
            }
            other => panic!("{other:?}"),
        }
        let defaults = parse_tasks(&raw(
            r#"{"send_clone": [{"task_name": "s", "every": 5, "destination_librarian": "hub",
                  "age_in_days": 1}]}"#,
        ))
        .unwrap();
        match &defaults[0].kind {
            TaskKind::SendClone(settings) => {
                assert_eq!(settings.send_batch_size, 128);
                assert_eq!(settings.warn_disabled_timer, None);
            }
            other => panic!("{other:?}"),
        }
        let error = parse_tasks(&raw(
            r#"{"check_consumed_queue": [{"task_name": "c", "every": 5, "complete_status": 3}]}"#,
        ))
        .unwrap_err();
        assert!(error.contains("only 2 (STAGED)"), "{error}");
        let fixer = parse_tasks(&raw(
            r#"{"corruption_fixer": [{"task_name": "f", "every": 5}]}"#,
        ))
        .unwrap();
        assert!(matches!(fixer[0].kind, TaskKind::CorruptionFixer(_)));
    }

    #[test]
    fn task_names_are_unique() {
        let error = parse_tasks(&raw(
            r#"{"duplicate_remote_instance_hypervisor": [{"task_name": "x", "every": 5},
                 {"task_name": "x", "every": 6}]}"#,
        ))
        .unwrap_err();
        assert!(error.contains("unique"), "{error}");
    }
}
