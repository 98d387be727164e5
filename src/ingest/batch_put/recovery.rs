//! Start-up recovery of batch uploads cut short by a crash: every file an intent
//! lists that no record points at is taken back, if it is still the inode the
//! intent named there, and the intent is forgotten.
//!
//! Invariants: a path is removed only while it is the very inode the intent
//! recorded, so a file someone else put at that name is never touched; a
//! recorded file is never touched; an intent is forgotten only once nothing it
//! named is left unrecorded.

use std::path::Path;

use super::record::forget_intent;
use crate::db::DbError;
use crate::db::repo::{instances, upload_intents};
use crate::model::{NamedItem, UploadIntent};
use crate::node::Node;

/// What recovery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UploadRecovery {
    /// Unrecorded files removed from a store.
    pub taken_back: usize,
    /// Files that could not be taken back; their intent is kept for next time.
    pub left: usize,
}

/// Settles every intent left by an earlier run. Blocking; runs before requests
/// are served.
pub fn recover_upload_intents(node: &Node) -> Result<UploadRecovery, DbError> {
    let mut report = UploadRecovery::default();
    for intent in node.db.read(upload_intents::all_intents)? {
        // A store that is not here now cannot be checked: its intent waits for a
        // start-up that finds it.
        if !node.stores.is_here(intent.store_id) {
            tracing::warn!(
                store_id = intent.store_id,
                files = intent.items.len(),
                "a batch upload was cut short on a store that is unavailable; it is settled at a start-up that finds the store"
            );
            report.left += intent.items.len();
            continue;
        }
        let Some(store) = node.stores.by_id(intent.store_id) else {
            report.left += intent.items.len();
            continue;
        };
        let before = report.left;
        for item in &intent.items {
            if is_recorded(node, &intent, item)? {
                continue;
            }
            match store.take_back(Path::new(&item.target), item.device, item.inode) {
                Ok(true) => report.taken_back += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(target = %item.target, %error, "cannot take back an unrecorded upload");
                    report.left += 1;
                }
            }
        }
        if report.left == before {
            forget_intent(node, intent.id)?;
        }
    }
    if report != UploadRecovery::default() {
        tracing::info!(?report, "batch upload recovery finished");
    }
    Ok(report)
}

/// Whether an instance of the item's file is recorded at the item's target.
fn is_recorded(node: &Node, intent: &UploadIntent, item: &NamedItem) -> Result<bool, DbError> {
    node.db
        .read(|tx| instances::recorded_at(tx, &item.name, intent.store_id, &item.target))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::db::repo::{files, next_id};
    use crate::model::{Checksum, DeletionPolicy, File, Instance, Timestamp};
    use crate::node::open_test_node;

    /// An intent item for the file now at `target`.
    fn item(name: &str, target: &Path) -> NamedItem {
        let metadata = fs::metadata(target).unwrap();
        NamedItem {
            name: name.into(),
            target: target.to_string_lossy().into_owned(),
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    #[test]
    fn unrecorded_files_are_taken_back_and_recorded_or_foreign_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let node = open_test_node(dir.path());
        let store = node.stores.all()[0].clone();
        fs::create_dir_all(store.root.join("b")).unwrap();
        for name in ["b/unrecorded", "b/recorded", "b/foreign"] {
            fs::write(store.root.join(name), name).unwrap();
        }
        let mut foreign = item("b/foreign", &store.root.join("b/foreign"));
        foreign.inode += 1;
        let items = vec![
            item("b/unrecorded", &store.root.join("b/unrecorded")),
            item("b/recorded", &store.root.join("b/recorded")),
            foreign,
            NamedItem {
                name: "b/never-named".into(),
                target: store.root.join("b/never-named").to_string_lossy().into(),
                device: 1,
                inode: 1,
            },
        ];
        let (store_id, recorded_path) = (
            store.id,
            store.root.join("b/recorded").to_string_lossy().into_owned(),
        );
        node.db
            .write_blocking(move |txn| {
                let intent = UploadIntent {
                    id: next_id(txn, "upload_intents")?,
                    store_id,
                    items,
                };
                upload_intents::put_intent(txn, &intent)?;
                let now = Timestamp::now();
                let file = File {
                    name: "b/recorded".into(),
                    create_time: now,
                    size: 10,
                    checksum: Checksum::parse("d41d8cd98f00b204e9800998ecf8427e").unwrap(),
                    uploader: "u".into(),
                    source: "u".into(),
                };
                let instance = Instance::verified_copy(
                    &file.name,
                    store_id,
                    Path::new(&recorded_path),
                    DeletionPolicy::Disallowed,
                    [0; 32],
                    now,
                );
                files::record_with_instances(txn, &[(file, instance)])?;
                Ok(Ok::<_, DbError>(()))
            })
            .unwrap();

        let report = recover_upload_intents(&node).unwrap();
        assert_eq!(
            report,
            UploadRecovery {
                taken_back: 1,
                left: 0
            }
        );
        assert!(!store.root.join("b/unrecorded").exists());
        assert!(store.root.join("b/recorded").exists());
        assert_eq!(
            fs::read(store.root.join("b/foreign")).unwrap(),
            b"b/foreign",
            "a file that is not the recorded inode is never touched"
        );
        assert!(
            node.db
                .read(upload_intents::all_intents)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            recover_upload_intents(&node).unwrap(),
            UploadRecovery::default()
        );
    }

    #[test]
    fn an_intent_on_a_store_that_is_not_here_is_kept_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let node = open_test_node(dir.path());
        let elsewhere = dir.path().join("unmounted/f");
        node.db
            .write_blocking(move |txn| {
                let intent = UploadIntent {
                    id: next_id(txn, "upload_intents")?,
                    store_id: 999,
                    items: vec![NamedItem {
                        name: "f".into(),
                        target: elsewhere.to_string_lossy().into_owned(),
                        device: 1,
                        inode: 1,
                    }],
                };
                upload_intents::put_intent(txn, &intent)?;
                Ok(Ok::<_, DbError>(()))
            })
            .unwrap();
        let report = recover_upload_intents(&node).unwrap();
        assert_eq!(
            report,
            UploadRecovery {
                taken_back: 0,
                left: 1
            }
        );
        assert_eq!(node.db.read(upload_intents::all_intents).unwrap().len(), 1);
    }
}
