//! Start-up recovery of drop-box batches cut short by a crash: every placement of
//! a recorded intent whose File record never committed is taken back, so that no
//! bytes stay in a store without a record, and the drop-box file is ingested
//! again.
//!
//! Invariants: a placed path is touched only while it is still the inode the
//! intent recorded; bytes whose drop-box original is gone are never deleted but
//! moved back into the drop-box (beside a file that took their place, if one
//! did); an intent is forgotten only once nothing it placed is left unrecorded.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::db::DbError;
use crate::db::repo::{dropbox_intents, instances};
use crate::model::{DropboxIntent, IntentItem};
use crate::node::Node;
use crate::store::durable::{rename_no_replace, sync_dir, take_back};

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
    for intent in node.db.read(dropbox_intents::all_intents)? {
        // A store that is not here now cannot be checked: its intent waits for a
        // start-up that finds it.
        if !node.stores.is_here(intent.store_id) {
            tracing::warn!(
                store_id = intent.store_id,
                files = intent.items.len(),
                "a drop-box batch was cut short on a store that is unavailable; it is settled at a start-up that finds the store"
            );
            report.left += intent.items.len();
            continue;
        }
        let before = report.left;
        for item in &intent.items {
            if is_recorded(node, &intent, item)? {
                continue;
            }
            match settle(item) {
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

/// Takes an unrecorded placement back, or returns it to the drop-box.
fn settle(item: &IntentItem) -> io::Result<Settled> {
    let target = Path::new(&item.target);
    let ours = match fs::symlink_metadata(target) {
        Ok(m) => m.dev() == item.target_device && m.ino() == item.target_inode,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if !ours {
        return Ok(Settled::Nothing);
    }
    let source = Path::new(&item.source);
    let original_there = match fs::symlink_metadata(source) {
        Ok(m) => m.dev() == item.source_device && m.ino() == item.source_inode,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if original_there {
        take_back(target, item.target_device, item.target_inode)?;
        return Ok(Settled::TakenBack);
    }
    return_to_dropbox(target, source)?;
    Ok(Settled::Returned)
}

/// Moves placed bytes whose original left the drop-box back to the original's
/// path, or beside it if a new file took that path.
fn return_to_dropbox(target: &Path, source: &Path) -> io::Result<()> {
    if let Some(parent) = source.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut destination = source.to_path_buf();
    for attempt in 1..=1000u32 {
        match rename_no_replace(target, &destination) {
            Ok(()) => {
                for dir in [target.parent(), destination.parent()]
                    .into_iter()
                    .flatten()
                {
                    sync_dir(dir)?;
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mut name = source.as_os_str().to_owned();
                name.push(format!(".recovered-{attempt}"));
                destination = PathBuf::from(name);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name beside {}", source.display()),
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::db::repo::{files, next_id};
    use crate::model::{Checksum, DeletionPolicy, File, Instance, Timestamp};
    use crate::node::open_test_node;

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
        let node = open_test_node(dir.path());
        let store = node.stores.all()[0].clone();
        let inbox = dir.path().join("in");
        fs::create_dir_all(&inbox).unwrap();
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
