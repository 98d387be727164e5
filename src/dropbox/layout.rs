//! A drop-box's resolved paths, and the start-up checks that need the real
//! filesystem: a drop-box may not overlap a store, its staging, the data
//! directory or another drop-box, and `move_to` may not lie in a store.

use std::fs;
use std::path::{Path, PathBuf};

use super::filter::Filter;
use crate::config::{ConfigError, DropboxConfig};
use crate::model::validate_file_name;
use crate::node::Node;

/// One drop-box, ready to watch.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Position in the configuration, for messages (`dropbox[N]`).
    pub index: usize,
    pub config: DropboxConfig,
    /// The watched directory (canonical).
    pub root: PathBuf,
    /// Where ingested files go with `after_ingest = "move"` (canonical).
    pub move_to: Option<PathBuf>,
    pub filter: Filter,
}

impl Layout {
    /// The path of `path` inside the drop-box, if it is inside and ingestable.
    pub fn relative<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        let relative = path.strip_prefix(&self.root).ok()?;
        (!relative.as_os_str().is_empty() && self.filter.accepts(path, relative))
            .then_some(relative)
    }

    /// The name a file at `relative` is recorded under, or why it has none.
    pub fn name_for(&self, relative: &Path) -> Result<String, String> {
        let Some(relative) = relative.to_str() else {
            return Err(format!(
                "its path '{}' is not valid UTF-8",
                relative.display()
            ));
        };
        let name = if self.config.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.config.prefix)
        };
        validate_file_name(&name).map_err(|e| e.to_string())?;
        Ok(name)
    }
}

/// Resolves every configured drop-box, creating missing directories, and checks
/// how their paths relate to the node's other directories.
pub fn resolve_all(node: &Node) -> Result<Vec<Layout>, ConfigError> {
    let mut layouts: Vec<Layout> = Vec::new();
    for (index, config) in node.config.dropbox.iter().enumerate() {
        let invalid = |field: &str, problem: String| ConfigError::Invalid {
            key: format!("dropbox[{index}].{field}"),
            problem,
        };
        let root = prepare_dir(&node.config.resolve(&config.path))
            .map_err(|problem| invalid("path", problem))?;
        let move_to = match &config.move_to {
            Some(path) => Some(
                prepare_dir(&node.config.resolve(path))
                    .map_err(|problem| invalid("move_to", problem))?,
            ),
            None => None,
        };
        for (described, other) in reserved_dirs(node) {
            if overlaps(&root, &other) {
                return Err(invalid(
                    "path",
                    format!(
                        "{} overlaps {described} ({})",
                        root.display(),
                        other.display()
                    ),
                ));
            }
            if let Some(move_to) = &move_to
                && overlaps(move_to, &other)
            {
                return Err(invalid(
                    "move_to",
                    format!(
                        "{} overlaps {described} ({})",
                        move_to.display(),
                        other.display()
                    ),
                ));
            }
        }
        if node.config.data_dir.starts_with(&root) {
            return Err(invalid(
                "path",
                format!("{} holds the data directory", root.display()),
            ));
        }
        if let Some(other) = layouts.iter().find(|l| overlaps(&root, &l.root)) {
            return Err(invalid(
                "path",
                format!(
                    "{} overlaps the drop-box dropbox[{}] ({})",
                    root.display(),
                    other.index,
                    other.root.display()
                ),
            ));
        }
        let excluded = move_to.clone().filter(|m| m.starts_with(&root));
        layouts.push(Layout {
            index,
            config: config.clone(),
            filter: Filter::new(&config.ignore, excluded),
            root,
            move_to,
        });
    }
    Ok(layouts)
}

/// Creates `path` if missing and returns its canonical form.
fn prepare_dir(path: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let canonical =
        fs::canonicalize(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    if !canonical.is_dir() {
        return Err(format!("{} is not a directory", canonical.display()));
    }
    Ok(canonical)
}

/// The store roots and staging directories, which a drop-box must stay out of.
fn reserved_dirs(node: &Node) -> Vec<(String, PathBuf)> {
    let mut dirs = Vec::new();
    for store in node.stores.all() {
        dirs.push((format!("store '{}'", store.name), store.root.clone()));
        dirs.push((
            format!("the staging of store '{}'", store.name),
            store.staging.clone(),
        ));
    }
    dirs
}

/// Whether one path is the other or inside it.
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}
