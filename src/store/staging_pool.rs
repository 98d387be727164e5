//! Staging directories of single uploads, lent out and taken back for reuse.
//!
//! A single upload gets a staging directory of its own; creating one allocates an
//! inode and a directory block, and removing it frees both (on ext4 without a
//! journal, mounted with `discard`, the freeing waits for the device). An emptied
//! directory of a committed single upload is kept as a spare instead and lent to
//! the next single upload.
//!
//! Invariants:
//! - a directory is taken back only if it was lent for one upload and that upload
//!   is over (nothing else names it), so a spare is never shared;
//! - a spare is lent again only while it is younger than [`SPARE_LIFETIME`] (far
//!   below the age at which the running sweep treats staging as orphaned, so it
//!   never removes a spare that is being lent), and only if it is still our own
//!   empty directory (not replaced by a link, nothing written into it meanwhile);
//!   its times are refreshed, so it ages from the new stage as a new one would;
//! - spares are ordinary staging directories without a live transfer: start-up
//!   recovery and the sweep remove them like any orphan.

use std::collections::HashSet;
use std::path::Path;

use crate::fsroot::Dir;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an emptied directory may wait to be lent again.
pub const SPARE_LIFETIME: Duration = Duration::from_secs(60);
/// Most spares kept.
const MAX_SPARES: usize = 64;

#[derive(Debug, Default)]
struct State {
    /// Emptied directories, with when they were taken back; newest last.
    spares: Vec<(String, Instant)>,
    /// Directories lent to one upload each and not yet given back.
    lent: HashSet<String>,
}

/// The spares and lent directories of one store's staging area.
#[derive(Debug, Default)]
pub struct StagingPool {
    state: Mutex<State>,
}

/// What [`StagingPool::give_back`] decided for a directory.
#[derive(Debug, PartialEq, Eq)]
pub enum GivenBack {
    /// Kept as a spare: leave it.
    Kept,
    /// Not a lent directory, or no room: remove it as usual.
    Remove,
}

impl StagingPool {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A spare directory of `staging` that is fit to be lent (see the invariants),
    /// now marked lent; `None` if there is none. Blocking (a few syscalls).
    pub fn lend_spare(&self, staging: &Path) -> Option<String> {
        loop {
            let name = {
                let mut state = self.state();
                let (name, since) = state.spares.pop()?;
                if since.elapsed() >= SPARE_LIFETIME {
                    // Every other spare is older still.
                    state.spares.push((name, since));
                    let stale = std::mem::take(&mut state.spares);
                    remove_in_background(staging, stale);
                    return None;
                }
                state.lent.insert(name.clone());
                name
            };
            if is_own_empty_dir_refreshed(staging, &name) {
                return Some(name);
            }
            // Someone wrote into it, or replaced it: it is no spare. Whatever is
            // there is left to the sweep, which removes staging nobody owns.
            self.state().lent.remove(&name);
        }
    }

    /// Marks a freshly created directory as lent to one upload.
    pub fn lend_new(&self, name: &str) {
        self.state().lent.insert(name.to_string());
    }

    /// Takes back the directory of an upload that is over. `emptied` says the
    /// upload's data left it whole (a nested upload name leaves directories behind).
    pub fn give_back(&self, name: &str, emptied: bool) -> GivenBack {
        let mut state = self.state();
        let was_lent = state.lent.remove(name);
        if was_lent && emptied && state.spares.len() < MAX_SPARES {
            state.spares.push((name.to_string(), Instant::now()));
            GivenBack::Kept
        } else {
            GivenBack::Remove
        }
    }

    /// Forgets a directory that is being removed.
    pub fn forget(&self, name: &str) {
        let mut state = self.state();
        state.lent.remove(name);
        state.spares.retain(|(spare, _)| spare != name);
    }
}

/// Removes spares that waited too long, on a thread of their own: the stage that
/// found them should not wait for it. A spare that is not empty stays (`rmdir`).
fn remove_in_background(staging: &Path, stale: Vec<(String, Instant)>) {
    let staging = staging.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("quire-staging-spares".into())
        .spawn(move || {
            let Ok(staging) = Dir::open_trusted(&staging) else {
                return;
            };
            for (name, _) in stale {
                let _ = staging.remove_dir(Path::new(&name));
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start removing old spare staging directories");
    }
}

/// Whether `name` is still an empty directory of this process's user in the
/// staging area `staging` (opened without following a link); if so its access
/// and modification times are set to now.
fn is_own_empty_dir_refreshed(staging: &Path, name: &str) -> bool {
    let Ok(directory) = Dir::open_trusted(staging).and_then(|s| s.open_dir(Path::new(name))) else {
        return false;
    };
    let owned = rustix::fs::fstat(&directory)
        .is_ok_and(|stat| stat.st_uid == rustix::process::geteuid().as_raw());
    if !owned {
        return false;
    }
    let Ok(mut entries) = rustix::fs::Dir::read_from(&directory) else {
        return false;
    };
    let empty = entries
        .all(|entry| entry.is_ok_and(|entry| matches!(entry.file_name().to_bytes(), b"." | b"..")));
    let now = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: rustix::fs::UTIME_NOW,
    };
    let times = rustix::fs::Timestamps {
        last_access: now,
        last_modification: now,
    };
    empty && rustix::fs::futimens(&directory, &times).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_a_given_back_directory_again_only_while_empty() {
        let staging = tempfile::tempdir().unwrap();
        let pool = StagingPool::default();
        std::fs::create_dir(staging.path().join("a")).unwrap();
        pool.lend_new("a");
        assert_eq!(pool.give_back("a", true), GivenBack::Kept);
        assert_eq!(pool.lend_spare(staging.path()).as_deref(), Some("a"));
        assert_eq!(pool.lend_spare(staging.path()), None, "lent once");

        // Written into while it waited: not lent, and not removed either.
        assert_eq!(pool.give_back("a", true), GivenBack::Kept);
        std::fs::write(staging.path().join("a/left"), b"x").unwrap();
        assert_eq!(pool.lend_spare(staging.path()), None);
        assert!(staging.path().join("a/left").exists());
    }

    #[test]
    fn takes_back_only_lent_and_emptied_directories() {
        let staging = tempfile::tempdir().unwrap();
        let pool = StagingPool::default();
        assert_eq!(pool.give_back("never-lent", true), GivenBack::Remove);
        pool.lend_new("nested");
        assert_eq!(pool.give_back("nested", false), GivenBack::Remove);
        assert_eq!(pool.give_back("nested", true), GivenBack::Remove, "once");
        pool.lend_new("gone");
        assert_eq!(pool.give_back("gone", true), GivenBack::Kept);
        assert_eq!(pool.lend_spare(staging.path()), None, "it does not exist");
    }

    #[test]
    fn a_link_in_place_of_a_spare_is_not_lent() {
        let staging = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), staging.path().join("s")).unwrap();
        let pool = StagingPool::default();
        pool.lend_new("s");
        assert_eq!(pool.give_back("s", true), GivenBack::Kept);
        assert_eq!(pool.lend_spare(staging.path()), None);
    }
}
