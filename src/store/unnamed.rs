//! Files written straight into a store directory without a name (`O_TMPFILE`),
//! named only once their bytes are verified and durable.
//!
//! An unnamed file costs one directory operation when it is named, where staging
//! and renaming costs three, and a crash before naming leaves nothing behind: the
//! kernel frees unnamed files. Filesystems without `O_TMPFILE` get a named
//! temporary file in the staging area instead, renamed into place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::durable::{
    link_in, rename_in, sync_directory, sync_file, sync_filesystem_of, unlink_in,
};
use super::{ParentDirs, Store};
use crate::fsroot::Dir;

/// Items named at once above which one filesystem sync replaces per-file syncs.
const SYNCFS_MIN_ITEMS: usize = 16;

/// A file being written for `<store>/<name>`, not yet visible there.
pub struct UnnamedFile {
    file: fs::File,
    /// The directory it will be named in, and its name there.
    parent: Arc<Dir>,
    base: PathBuf,
    target: PathBuf,
    /// The staging area and the name of the temporary file used where
    /// `O_TMPFILE` is not supported.
    temporary: Option<(Dir, PathBuf)>,
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
        if let Some((staging, temporary)) = &self.temporary {
            let _ = unlink_in(staging, temporary);
        }
    }
}

impl Store {
    /// Opens an unnamed file in the directory `<root>/<name>` will live in,
    /// creating that directory durably unless `parents` (the directories a batch
    /// already made sure of) has it.
    pub fn create_unnamed(&self, name: &str, parents: &mut ParentDirs) -> io::Result<UnnamedFile> {
        let (parent, base) = parents.for_name(name)?;
        self.create_unnamed_in(parent, base, name)
    }

    /// Opens an unnamed file to be named `base` in `parent`, the directory (opened
    /// by [`ParentDirs`]) of `<root>/<name>`.
    pub fn create_unnamed_in(
        &self,
        parent: Arc<Dir>,
        base: &Path,
        name: &str,
    ) -> io::Result<UnnamedFile> {
        let target = self.file_path(name);
        // A store that keeps committed files read-only gets them read-only from
        // the start: the descriptor opened here still writes.
        let mode = if self.readonly_after_commit {
            0o444
        } else {
            0o644
        };
        match parent.create_unnamed(Path::new(""), mode) {
            Ok(file) => Ok(UnnamedFile {
                file,
                parent,
                base: base.to_path_buf(),
                target,
                temporary: None,
            }),
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                let staging = self.staging_root()?;
                let temporary = PathBuf::from(format!(".tmp-{}", uuid::Uuid::new_v4()));
                let file = staging.create_file(&temporary, mode)?;
                Ok(UnnamedFile {
                    file,
                    parent,
                    base: base.to_path_buf(),
                    target,
                    temporary: Some((staging, temporary)),
                })
            }
            Err(error) => Err(error),
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
    pub fn name_all(&self, mut files: Vec<UnnamedFile>) -> Vec<io::Result<PathBuf>> {
        let mut results: Vec<io::Result<PathBuf>> = files
            .iter_mut()
            .map(|file| name_one(file).map(|()| file.target.clone()))
            .collect();
        let durable = if files.len() >= SYNCFS_MIN_ITEMS {
            self.root_dir().and_then(|root| sync_filesystem_of(&root))
        } else {
            let mut directories: Vec<&Arc<Dir>> = files
                .iter()
                .zip(&results)
                .filter(|(_, named)| named.is_ok())
                .map(|(file, _)| &file.parent)
                .collect();
            directories.sort_by_key(|d| Arc::as_ptr(d));
            directories.dedup_by_key(|d| Arc::as_ptr(d));
            files
                .iter()
                .try_for_each(|f| sync_file(&f.file))
                .and_then(|()| directories.into_iter().try_for_each(|d| sync_directory(d)))
        };
        if let Err(error) = durable {
            for (file, result) in files.iter().zip(results.iter_mut()) {
                if result.is_ok() {
                    // A removal that fails leaves the name to the caller's intent.
                    if unlink_in(&file.parent, &file.base).is_ok() {
                        let _ = sync_directory(&file.parent);
                    }
                    *result = Err(io::Error::new(error.kind(), error.to_string()));
                }
            }
        }
        results
    }
}

/// Gives an unnamed file its name; never replaces an existing one.
fn name_one(file: &mut UnnamedFile) -> io::Result<()> {
    match file.temporary.take() {
        Some((staging, temporary)) => {
            let renamed = rename_in(&staging, &temporary, &file.parent, &file.base);
            if renamed.is_err() {
                file.temporary = Some((staging, temporary));
            }
            renamed
        }
        None => link_in(&file.file, &file.parent, &file.base),
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
        let mut made = ParentDirs::of(&store).unwrap();
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
        let mut file = store
            .create_unnamed("gone", &mut ParentDirs::of(&store).unwrap())
            .unwrap();
        file.file().write_all(b"x").unwrap();
        drop(file);
        assert!(fs::read_dir(&store.root).unwrap().next().is_none());
        assert!(fs::read_dir(&store.staging).unwrap().next().is_none());
    }
}
