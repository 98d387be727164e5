//! Directory syncs shared by concurrent callers: commits that renamed entries into
//! the same directory at about the same time wait for one fsync of it together,
//! instead of one fsync each. A directory is known by its identity (device and
//! inode of the handle the caller opened symlink-free), never by a path.
//!
//! Invariant: a caller hears the outcome of an fsync that started after it asked
//! (after its rename), so a success means its entry is durable. Callers join the
//! round that has not started yet; a round closes when its fsync starts, and each
//! round keeps its own outcome, so an error reaches every caller it covered.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use super::durable::sync_directory;
use crate::fsroot::Dir;

/// A directory's device and inode.
type Identity = (u64, u64);

/// One fsync of a directory and the callers it serves.
#[derive(Debug, Default)]
struct Round {
    outcome: OnceLock<Result<(), (io::ErrorKind, String)>>,
}

#[derive(Debug, Default)]
struct DirState {
    /// A round is syncing the directory now.
    running: bool,
    /// The round that callers join now; it starts when `running` ends.
    waiting: Option<Arc<Round>>,
}

#[derive(Debug, Default)]
struct Directory {
    state: Mutex<DirState>,
    changed: Condvar,
}

/// Shared syncs of the directories of one store.
#[derive(Debug, Default)]
pub struct SharedDirSyncs {
    directories: Mutex<HashMap<Identity, Arc<Directory>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SharedDirSyncs {
    /// Makes the entries of `dir` durable, sharing the fsync with concurrent
    /// callers for the same directory. Blocking.
    pub fn sync_dir(&self, dir: &Dir) -> io::Result<()> {
        let identity = dir.meta()?.identity();
        let directory = lock(&self.directories).entry(identity).or_default().clone();
        let mut state = lock(&directory.state);
        let round = state.waiting.get_or_insert_with(Default::default).clone();
        loop {
            if let Some(outcome) = round.outcome.get() {
                return outcome
                    .clone()
                    .map_err(|(kind, text)| io::Error::new(kind, text));
            }
            let mine_is_next = state
                .waiting
                .as_ref()
                .is_some_and(|waiting| Arc::ptr_eq(waiting, &round));
            if !state.running && mine_is_next {
                state.waiting = None;
                state.running = true;
                drop(state);
                let synced = sync_directory(dir);
                let _ = round.outcome.set(
                    synced
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| (e.kind(), e.to_string())),
                );
                let mut state = lock(&directory.state);
                state.running = false;
                let idle = state.waiting.is_none();
                drop(state);
                directory.changed.notify_all();
                if idle {
                    self.forget_if_idle(identity, &directory);
                }
                return synced;
            }
            state = directory
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Drops the bookkeeping of a directory nobody is syncing. A caller that
    /// fetched it just before still works with it (it only shares less).
    fn forget_if_idle(&self, identity: Identity, directory: &Arc<Directory>) {
        let mut directories = lock(&self.directories);
        let state = lock(&directory.state);
        if !state.running && state.waiting.is_none() {
            directories.remove(&identity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_callers_all_hear_success() {
        let dir = tempfile::tempdir().unwrap();
        let handle = Dir::open_trusted(dir.path()).unwrap();
        let syncs = SharedDirSyncs::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| syncs.sync_dir(&handle).unwrap());
            }
        });
        assert!(lock(&syncs.directories).is_empty(), "nothing left behind");
    }
}
