//! Start-up recovery of drop-box batches cut short by a crash: every placement of
//! a recorded intent whose File record never committed is taken back, so that no
//! bytes stay in a store without a record, and the drop-box file is ingested
//! again.
//!
//! Invariants: a placed path is touched only while it is still the inode the
//! intent recorded; bytes whose drop-box original is gone are never deleted but
//! moved back into the drop-box (beside a file that took their place, if one
//! did); an intent is forgotten only once nothing it placed is left unrecorded.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::db::DbError;
use crate::db::repo::{dropbox_intents, instances};
use crate::fsroot::{Dir, refusal};
use crate::model::{DropboxIntent, IntentItem};
use crate::node::Node;
use crate::store::Store;
use crate::store::durable::{create_dirs_in, rename_in, sync_directory, take_back_in};

/// What recovery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IntentRecovery {
    /// Unrecorded placements removed (their drop-box original was still there).
    pub taken_back: usize,
    /// Unrecorded placements moved back into the drop-box (the original was gone).
    pub returned: usize,
    /// Placements that could not be handled; their intent is kept for next time.
    pub left: usize,
}

/// Settles every intent left by an earlier run. Blocking; runs before any
/// drop-box batch starts.
pub fn recover_intents(node: &Node) -> Result<IntentRecovery, DbError> {
    let mut report = IntentRecovery::default();
    let dropboxes = dropbox_roots(node);
    for intent in node.db.read(dropbox_intents::all_intents)? {
        // A store that is not here now cannot be checked: its intent waits for a
        // start-up that finds it.
        let store = match node.stores.by_id(intent.store_id) {
            Some(store) if store.available() => store,
            _ => {
                tracing::warn!(
                    store_id = intent.store_id,
                    files = intent.items.len(),
                    "a drop-box batch was cut short on a store that is unavailable; it is settled at a start-up that finds the store"
                );
                report.left += intent.items.len();
                continue;
            }
        };
        let before = report.left;
        for item in &intent.items {
            if is_recorded(node, &intent, item)? {
                continue;
            }
            match settle(store, &dropboxes, item) {
                Ok(Settled::Nothing) => {}
                Ok(Settled::TakenBack) => report.taken_back += 1,
                Ok(Settled::Returned) => report.returned += 1,
                Err(error) => {
                    tracing::error!(target = %item.target, %error, "cannot take back an unrecorded drop-box placement");
                    report.left += 1;
                }
            }
        }
        if report.left == before {
            let id = intent.id;
            node.db.write_blocking(move |txn| {
                dropbox_intents::delete_intent(txn, id)?;
                Ok(Ok::<_, DbError>(()))
            })?;
        }
    }
    if report != IntentRecovery::default() {
        tracing::info!(?report, "drop-box recovery finished");
    }
    Ok(report)
}

/// The configured drop-box directories, as their batches recorded them
/// (canonical paths); those missing now are left out.
fn dropbox_roots(node: &Node) -> Vec<PathBuf> {
    node.config
        .dropbox
        .iter()
        .filter_map(|d| std::fs::canonicalize(node.config.resolve(&d.path)).ok())
        .collect()
}

/// Whether the item's file is recorded with an instance at the item's target.
fn is_recorded(node: &Node, intent: &DropboxIntent, item: &IntentItem) -> Result<bool, DbError> {
    node.db
        .read(|tx| instances::recorded_at(tx, &item.name, intent.store_id, &item.target))
}

enum Settled {
    /// Nothing of ours is at the target.
    Nothing,
    TakenBack,
    Returned,
}

/// Takes an unrecorded placement back, or returns it to the drop-box. Both the
/// target (in `store`) and the original (in one of `dropboxes`) are reached
/// symlink-free from their roots.
fn settle(store: &Store, dropboxes: &[PathBuf], item: &IntentItem) -> io::Result<Settled> {
    let target = Path::new(&item.target);
    let relative = store.relative_path(target).ok_or_else(|| {
        io::Error::other(format!(
            "{} is not in store '{}'",
            target.display(),
            store.name
        ))
    })?;
    let (target_dir, target_name) = match store.root_dir()?.parent_and_name(relative) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound || refusal(&e).is_some() => {
            return Ok(Settled::Nothing);
        }
        Err(e) => return Err(e),
    };
    let ours = target_dir
        .try_stat(target_name)?
        .is_some_and(|m| m.identity() == (item.target_device, item.target_inode));
    if !ours {
        return Ok(Settled::Nothing);
    }
    let source = Path::new(&item.source);
    let (dropbox_root, source_relative) = dropboxes
        .iter()
        .find_map(|root| source.strip_prefix(root).ok().map(|r| (root, r)))
        .ok_or_else(|| {
            io::Error::other(format!(
                "the drop-box of {} is no longer configured; the placement is kept until it is",
                source.display()
            ))
        })?;
    let dropbox = Dir::open_trusted(dropbox_root)?;
    let original_there = match dropbox.try_stat(source_relative) {
        Ok(meta) => meta.is_some_and(|m| m.identity() == (item.source_device, item.source_inode)),
        Err(e) if refusal(&e).is_some() => false,
        Err(e) => return Err(e),
    };
    if original_there {
        take_back_in(
            &target_dir,
            target_name,
            item.target_device,
            item.target_inode,
        )?;
        return Ok(Settled::TakenBack);
    }
    return_to_dropbox(&target_dir, target_name, &dropbox, source_relative)?;
    Ok(Settled::Returned)
}

/// Moves placed bytes whose original left the drop-box back to the original's
/// path, or beside it if a new file took that path.
fn return_to_dropbox(
    target_dir: &Dir,
    target_name: &Path,
    dropbox: &Dir,
    source: &Path,
) -> io::Result<()> {
    let destination = create_dirs_in(dropbox, source.parent().unwrap_or(Path::new("")))?;
    let base = source
        .file_name()
        .ok_or_else(|| io::Error::other("a drop-box file has a name"))?;
    let mut name = OsString::from(base);
    for attempt in 1..=1000u32 {
        match rename_in(target_dir, target_name, &destination, Path::new(&name)) {
            Ok(()) => {
                sync_directory(target_dir)?;
                sync_directory(&destination)?;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                name = OsString::from(base);
                name.push(format!(".recovered-{attempt}"));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free name beside {}",
            dropbox.display_path(source).display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::db::repo::{files, next_id};
    use crate::model::{Checksum, DeletionPolicy, File, Instance, Timestamp};
    use crate::node::open_node;

    /// A node whose drop-box is `<dir>/in`, with its data in `<dir>/data`.
    fn node_with_dropbox(dir: &Path) -> Arc<Node> {
        fs::create_dir_all(dir.join("in")).unwrap();
        let text = format!(
            "[[dropbox]]\npath = \"{}\"\nprefix = \"p\"\nafter_ingest = \"delete\"\n",
            dir.join("in").display()
        );
        let mut config = Config::from_toml(&text).unwrap();
        config.data_dir = dir.join("data");
        open_node(config).unwrap().0
    }

    /// An intent item for `source` placed (linked or copied) at `target`.
    fn item(name: &str, source: &Path, target: &Path) -> IntentItem {
        let (s, t) = (fs::metadata(source).ok(), fs::metadata(target).unwrap());
        IntentItem {
            name: name.into(),
            source: source.to_string_lossy().into_owned(),
            source_device: s.as_ref().map_or(0, |m| m.dev()),
            source_inode: s.as_ref().map_or(0, |m| m.ino()),
            target: target.to_string_lossy().into_owned(),
            target_device: t.dev(),
            target_inode: t.ino(),
        }
    }

    fn put_intent(node: &Node, items: Vec<IntentItem>) {
        let store_id = node.stores.all()[0].id;
        node.db
            .write_blocking(move |txn| {
                let intent = DropboxIntent {
                    id: next_id(txn, "dropbox_intents")?,
                    store_id,
                    items,
                };
                dropbox_intents::put_intent(txn, &intent)?;
                Ok(Ok::<_, DbError>(()))
            })
            .unwrap();
    }

    #[test]
    fn unrecorded_placements_are_taken_back_or_returned_and_recorded_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let node = node_with_dropbox(&base);
        let store = node.stores.all()[0].clone();
        let inbox = base.join("in");
        fs::create_dir_all(store.root.join("p")).unwrap();
        // Linked, original still in the drop-box: taken back.
        fs::write(inbox.join("linked"), b"l").unwrap();
        fs::hard_link(inbox.join("linked"), store.root.join("p/linked")).unwrap();
        // Copied, original gone from the drop-box: returned to it.
        fs::write(inbox.join("copied"), b"c").unwrap();
        fs::write(store.root.join("p/copied"), b"c").unwrap();
        let copied = item(
            "p/copied",
            &inbox.join("copied"),
            &store.root.join("p/copied"),
        );
        fs::remove_file(inbox.join("copied")).unwrap();
        // Recorded: kept.
        fs::write(inbox.join("kept"), b"k").unwrap();
        fs::hard_link(inbox.join("kept"), store.root.join("p/kept")).unwrap();
        // Someone else's file at the target: not ours, untouched.
        fs::write(inbox.join("other"), b"o").unwrap();
        fs::write(store.root.join("p/other"), b"theirs").unwrap();
        let mut other = item("p/other", &inbox.join("other"), &store.root.join("p/other"));
        other.target_inode += 1;
        put_intent(
            &node,
            vec![
                item(
                    "p/linked",
                    &inbox.join("linked"),
                    &store.root.join("p/linked"),
                ),
                copied,
                item("p/kept", &inbox.join("kept"), &store.root.join("p/kept")),
                other,
            ],
        );
        let kept_path = store.root.join("p/kept").to_string_lossy().into_owned();
        let store_id = store.id;
        node.db
            .write_blocking(move |txn| {
                let now = Timestamp::now();
                let checksum = Checksum::parse("d41d8cd98f00b204e9800998ecf8427e").unwrap();
                files::insert(
                    txn,
                    &File {
                        name: "p/kept".into(),
                        create_time: now,
                        size: 1,
                        checksum,
                        uploader: "dropbox".into(),
                        source: "dropbox".into(),
                    },
                )?;
                instances::put_instance(
                    txn,
                    &Instance {
                        id: next_id(txn, "instances")?,
                        file_name: "p/kept".into(),
                        store_id,
                        path: kept_path,
                        deletion_policy: DeletionPolicy::Disallowed,
                        created_time: now,
                        available: true,
                        blake3: [0; 32],
                        verified_time: now,
                        verified_stat: None,
                    },
                )?;
                Ok(Ok::<_, DbError>(()))
            })
            .unwrap();

        let report = recover_intents(&node).unwrap();
        assert_eq!(
            report,
            IntentRecovery {
                taken_back: 1,
                returned: 1,
                left: 0
            }
        );
        assert!(!store.root.join("p/linked").exists());
        assert_eq!(fs::read(inbox.join("linked")).unwrap(), b"l");
        assert!(!store.root.join("p/copied").exists());
        assert_eq!(fs::read(inbox.join("copied")).unwrap(), b"c");
        assert!(store.root.join("p/kept").exists());
        assert_eq!(fs::read(store.root.join("p/other")).unwrap(), b"theirs");
        assert!(
            node.db
                .read(dropbox_intents::all_intents)
                .unwrap()
                .is_empty()
        );
        assert_eq!(recover_intents(&node).unwrap(), IntentRecovery::default());
    }
}
