//! Files written straight into a store directory without a name (`O_TMPFILE`),
//! named only once their bytes are verified and durable.
//!
//! An unnamed file costs one directory operation when it is named, where staging
//! and renaming costs three, and a crash before naming leaves nothing behind: the
//! kernel frees unnamed files. Filesystems without `O_TMPFILE` get a named
//! temporary file in the staging area instead, renamed into place.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::Store;
use super::durable::{
    create_dirs_durably, link_no_replace, remove_file, rename_no_replace, sync_dir, sync_file,
    sync_filesystem,
};

/// Items named at once above which one filesystem sync replaces per-file syncs.
const SYNCFS_MIN_ITEMS: usize = 16;

/// A file being written for `<store>/<name>`, not yet visible there.
pub struct UnnamedFile {
    file: fs::File,
    target: PathBuf,
    /// The named temporary file used where `O_TMPFILE` is not supported.
    temporary: Option<PathBuf>,
}

impl UnnamedFile {
    /// The open file, to write the bytes into.
    pub fn file(&mut self) -> &mut fs::File {
        &mut self.file
    }

    /// Where the file will be named.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for UnnamedFile {
    fn drop(&mut self) {
        if let Some(temporary) = &self.temporary {
            let _ = remove_file(temporary);
        }
    }
}

impl Store {
    /// Opens an unnamed file in the directory `<root>/<name>` will live in,
    /// creating that directory durably if it is not in `made` (the directories a
    /// batch already made sure of; this call adds to it).
    pub fn create_unnamed(
        &self,
        name: &str,
        made: &mut HashSet<PathBuf>,
    ) -> io::Result<UnnamedFile> {
        let target = self.file_path(name);
        let relative_parent = Path::new(name).parent().unwrap_or(Path::new(""));
        if !made.contains(relative_parent) {
            create_dirs_durably(&self.root, relative_parent)?;
            made.insert(relative_parent.to_path_buf());
        }
        let parent = target.parent().unwrap_or(&self.root);
        // A store that keeps committed files read-only gets them read-only from
        // the start: the descriptor opened here still writes.
        let mode = if self.readonly_after_commit {
            0o444
        } else {
            0o644
        };
        let unnamed = rustix::fs::open(
            parent,
            rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(mode),
        );
        match unnamed {
            Ok(fd) => Ok(UnnamedFile {
                file: fs::File::from(fd),
                target,
                temporary: None,
            }),
            Err(
                rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL,
            ) => {
                let temporary = self.staging.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
                let file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&temporary)?;
                Ok(UnnamedFile {
                    file,
                    target,
                    temporary: Some(temporary),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Names every file at its target without replacing anything
    /// (`AlreadyExists` if the name is taken), then makes bytes and new entries
    /// durable together: one filesystem sync for a large batch, the files and
    /// their directories one by one for a small one. Each file gets its own
    /// result; the target of a failure is not left behind.
    ///
    /// Invariant: the caller recorded, durably and before this call, each file's
    /// target and inode, so that a name whose bytes a crash cut short is found and
    /// taken back at start-up. That is why the bytes need no sync of their own
    /// before they are named.
    pub fn name_all(&self, files: Vec<UnnamedFile>) -> Vec<io::Result<PathBuf>> {
        let mut results: Vec<io::Result<PathBuf>> = files
            .iter()
            .map(|file| name_one(file).map(|()| file.target.clone()))
            .collect();
        let durable = if files.len() >= SYNCFS_MIN_ITEMS {
            sync_filesystem(&self.root)
        } else {
            let mut directories: Vec<&Path> = results
                .iter()
                .flatten()
                .filter_map(|target| target.parent())
                .collect();
            directories.sort();
            directories.dedup();
            files
                .iter()
                .try_for_each(|f| sync_file(&f.file))
                .and_then(|()| directories.into_iter().try_for_each(sync_dir))
        };
        if let Err(error) = durable {
            for result in results.iter_mut() {
                if let Ok(target) = result {
                    // A removal that fails leaves the name to the caller's intent.
                    if remove_file(target).is_ok()
                        && let Some(parent) = target.parent()
                    {
                        let _ = sync_dir(parent);
                    }
                    *result = Err(io::Error::new(error.kind(), error.to_string()));
                }
            }
        }
        results
    }
}

/// Gives an unnamed file its name; never replaces an existing one.
fn name_one(file: &UnnamedFile) -> io::Result<()> {
    match &file.temporary {
        Some(temporary) => rename_no_replace(temporary, &file.target),
        None => link_no_replace(&file.file, &file.target),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::StoreConfig;

    fn store(dir: &Path) -> Store {
        let config = StoreConfig {
            name: "t".into(),
            path: dir.join("root"),
            staging_path: None,
            ingestable: true,
            report_full_fraction: 1.0,
            enabled: true,
            group_write_after_stage: false,
            own_after_commit: false,
            readonly_after_commit: true,
        };
        let store = Store::new(1, &config, dir.join("root"), dir.join("staging"), true);
        store.prepare().unwrap();
        store
    }

    #[test]
    fn unnamed_files_appear_only_when_named_and_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut made = HashSet::new();
        let mut first = store.create_unnamed("a/b/one", &mut made).unwrap();
        first.file().write_all(b"first").unwrap();
        assert!(!store.file_path("a/b/one").exists());
        let mut clash = store.create_unnamed("a/b/one", &mut made).unwrap();
        clash.file().write_all(b"second").unwrap();
        let named = store.name_all(vec![first]);
        assert_eq!(named[0].as_ref().unwrap(), &store.file_path("a/b/one"));
        assert_eq!(fs::read(store.file_path("a/b/one")).unwrap(), b"first");
        let refused = store.name_all(vec![clash]);
        assert_eq!(
            refused[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(fs::read(store.file_path("a/b/one")).unwrap(), b"first");
        let mode = fs::metadata(store.file_path("a/b/one"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o222, 0, "committed files are read-only");
    }

    #[test]
    fn a_dropped_unnamed_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut file = store.create_unnamed("gone", &mut HashSet::new()).unwrap();
        file.file().write_all(b"x").unwrap();
        drop(file);
        assert!(fs::read_dir(&store.root).unwrap().next().is_none());
        assert!(fs::read_dir(&store.staging).unwrap().next().is_none());
    }
}
