//! `[[dropbox]]` tables: directories that instruments drop files into, each file
//! ingested once, complete, as `<prefix>/<relative path>`.
//!
//! Choices (also documented in `fixtures/quire.toml`):
//! - `path`, `prefix` and `after_ingest` have no default: where files come from,
//!   what they are called forever, and what happens to the originals are the
//!   operator's to say. `prefix = ""` names files by their relative path alone.
//! - `after_ingest = "move"` needs `move_to`, a directory; if it lies inside the
//!   watched tree, it is excluded from ingest.
//! - A file is complete when it was closed after writing or moved in, or, when no
//!   event says so (files found by a rescan), once its size and mtime stayed the
//!   same for `settle_seconds`.
//! - `ignore` replaces the default list (hidden files and directories, `*.part`,
//!   `*.partial`, `*.tmp`, `*.swp`, `*~`); a pattern without `/` matches any one
//!   component of the relative path, a pattern with `/` the whole relative path;
//!   `*` matches any run of characters but `/`, `?` one character.
//! - `link`: on the store's filesystem, the dropped file's inode is linked into the
//!   store (no data copy) only when nothing outside the store keeps it: with
//!   `after_ingest = "delete"`, for a file with one name, owned by the node's user
//!   and writable by nobody else. Otherwise (another account's file, other links,
//!   `after_ingest = "move"`, whose moved-aside file would share the stored inode)
//!   it is copied.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{Algorithm, DeletionPolicy};

/// What happens to a drop-box file once its record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterIngest {
    /// Remove it from the drop-box.
    Delete,
    /// Move it to `move_to`, keeping its relative path.
    Move,
}

/// One `[[dropbox]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropboxConfig {
    /// The directory watched (with every subdirectory). Relative paths are taken
    /// from the data directory; it is created if missing.
    pub path: PathBuf,
    /// Names are `<prefix>/<path relative to the drop-box>`; `""` for no prefix.
    pub prefix: String,
    /// `"delete"` or `"move"` (to `move_to`).
    pub after_ingest: AfterIngest,
    /// Where ingested files go with `after_ingest = "move"` (relative path kept).
    #[serde(default)]
    pub move_to: Option<PathBuf>,
    /// A file found by a scan (not announced by a close-after-write or a move) is
    /// complete once its size and mtime stayed the same this long.
    #[serde(default = "default_settle_seconds")]
    pub settle_seconds: f64,
    /// A full rescan this often finds files no event announced (writes from other
    /// hosts on network filesystems) and retries files that failed, each after a
    /// back-off of 1, 2, 4 ... 64 rescans.
    #[serde(default = "default_rescan_seconds")]
    pub rescan_seconds: f64,
    /// The store files go to. Default: the first ingestable, enabled store with
    /// room, preferring one on the drop-box's filesystem.
    #[serde(default)]
    pub store: Option<String>,
    /// Recorded as the file's uploader and source.
    #[serde(default = "default_uploader")]
    pub uploader: String,
    /// The algorithm of the recorded checksum; BLAKE3 is recorded for every copy
    /// regardless.
    #[serde(default = "default_checksum")]
    pub checksum: Algorithm,
    /// Files and directories never ingested (editor and partial files).
    #[serde(default = "default_ignore")]
    pub ignore: Vec<String>,
    /// Deletion policy of the new instances: `"allowed"` or `"disallowed"`.
    #[serde(default, with = "policy_name")]
    pub deletion_policy: DeletionPolicy,
    /// Link the dropped inode into the store when possible instead of copying.
    #[serde(default = "default_link")]
    pub link: bool,
}

fn default_settle_seconds() -> f64 {
    5.0
}

fn default_rescan_seconds() -> f64 {
    60.0
}

fn default_uploader() -> String {
    "dropbox".into()
}

fn default_checksum() -> Algorithm {
    Algorithm::Md5
}

fn default_link() -> bool {
    true
}

/// The default `ignore` list.
pub fn default_ignore() -> Vec<String> {
    [".*", "*.part", "*.partial", "*.tmp", "*.swp", "*~"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// `deletion_policy` written as `"allowed"` / `"disallowed"`.
mod policy_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::DeletionPolicy;

    pub fn serialize<S: Serializer>(policy: &DeletionPolicy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match policy {
            DeletionPolicy::Allowed => "allowed",
            DeletionPolicy::Disallowed => "disallowed",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeletionPolicy, D::Error> {
        match String::deserialize(d)?.to_ascii_lowercase().as_str() {
            "allowed" => Ok(DeletionPolicy::Allowed),
            "disallowed" => Ok(DeletionPolicy::Disallowed),
            other => Err(serde::de::Error::custom(format!(
                "'{other}' is not a deletion policy (\"allowed\" or \"disallowed\")"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AfterIngest, Config};
    use crate::model::{Algorithm, DeletionPolicy};

    fn parse(table: &str) -> Result<Config, String> {
        Config::from_toml(&format!("[[dropbox]]\n{table}")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_minimal_table_gets_the_documented_defaults() {
        let config = parse("path = \"in\"\nprefix = \"raw\"\nafter_ingest = \"delete\"\n").unwrap();
        let dropbox = &config.dropbox[0];
        assert_eq!(dropbox.after_ingest, AfterIngest::Delete);
        assert_eq!(dropbox.settle_seconds, 5.0);
        assert_eq!(dropbox.uploader, "dropbox");
        assert_eq!(dropbox.checksum, Algorithm::Md5);
        assert_eq!(dropbox.deletion_policy, DeletionPolicy::Disallowed);
        assert!(dropbox.ignore.contains(&"*.part".to_string()));
        assert!(dropbox.link);
    }

    #[test]
    fn bad_tables_are_refused_naming_the_key() {
        let cases = [
            ("prefix = \"p\"\nafter_ingest = \"delete\"\n", "path"),
            ("path = \"in\"\nafter_ingest = \"delete\"\n", "prefix"),
            ("path = \"in\"\nprefix = \"p\"\n", "after_ingest"),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"move\"\n",
                "dropbox[0].move_to",
            ),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\nmove_to = \"x\"\n",
                "dropbox[0].move_to",
            ),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"keep\"\n",
                "after_ingest",
            ),
            (
                "path = \"in\"\nprefix = \"/abs\"\nafter_ingest = \"delete\"\n",
                "dropbox[0].prefix",
            ),
            (
                "path = \"in\"\nprefix = \"a//b\"\nafter_ingest = \"delete\"\n",
                "dropbox[0].prefix",
            ),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\nsettle_seconds = 0\n",
                "dropbox[0].settle_seconds",
            ),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\nstore = \"nope\"\n",
                "dropbox[0].store",
            ),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\nchecksum = \"crc\"\n",
                "checksum",
            ),
            (
                "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\ncolour = 1\n",
                "colour",
            ),
        ];
        for (table, key) in cases {
            let error = parse(table).expect_err(table);
            assert!(error.contains(key), "{table:?}: {error}");
        }
    }

    #[test]
    fn two_drop_boxes_on_one_path_are_refused() {
        let table = "path = \"in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\n";
        let error = Config::from_toml(&format!("[[dropbox]]\n{table}[[dropbox]]\n{table}"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("dropbox[1].path"), "{error}");
    }
}
