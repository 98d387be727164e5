//! The two transactions of a batch: the intent (what is about to be placed, and
//! where), durable before anything is placed; then File + Instance for every
//! placed file, in the same transaction that forgets the intent.

use super::place::Placement;
use crate::db::DbError;
use crate::db::repo::{dropbox_intents, files, next_id};
use crate::model::{DropboxIntent, File, Instance, IntentItem, Timestamp};
use crate::node::Node;

/// What the records say besides the bytes.
pub struct RecordAs<'a> {
    pub uploader: &'a str,
    pub algorithm: crate::model::Algorithm,
    pub deletion_policy: crate::model::DeletionPolicy,
}

/// Records (durably) the intent to place `items`; returns its id.
pub fn write_intent(node: &Node, store_id: u64, items: &[Placement]) -> Result<u64, DbError> {
    let items: Vec<IntentItem> = items
        .iter()
        .map(|p| IntentItem {
            name: p.opened.name.clone(),
            source: p.opened.path.to_string_lossy().into_owned(),
            source_device: p.opened.fingerprint.device,
            source_inode: p.opened.fingerprint.inode,
            target: p.target.to_string_lossy().into_owned(),
            target_device: p.target_device,
            target_inode: p.target_inode,
        })
        .collect();
    node.db.write_blocking(move |txn| {
        let intent = DropboxIntent {
            id: next_id(txn, "dropbox_intents")?,
            store_id,
            items,
        };
        dropbox_intents::put_intent(txn, &intent)?;
        Ok(Ok::<_, DbError>(intent.id))
    })
}

/// Forgets an intent whose placements were all taken back.
pub fn forget_intent(node: &Node, id: u64) -> Result<(), DbError> {
    node.db.write_blocking(move |txn| {
        dropbox_intents::delete_intent(txn, id)?;
        Ok(Ok::<_, DbError>(()))
    })
}

/// Records every placed item in one transaction; `true` for each item recorded.
/// An item whose name was recorded meanwhile is refused (nothing written for
/// it). When `whole_intent` (these are all the intent's items) and every item is
/// recorded, the intent is forgotten in the same transaction; otherwise the
/// caller takes back what is not recorded, then forgets it.
pub fn record_all(
    node: &Node,
    intent: u64,
    placed: &[Placement],
    record_as: &RecordAs,
    whole_intent: bool,
) -> Result<Vec<bool>, DbError> {
    let now = Timestamp::now();
    let work: Vec<(File, Instance)> = placed
        .iter()
        .map(|p| records_for(p, record_as, now))
        .collect();
    node.db.write_blocking(move |txn| {
        let accepted = files::record_with_instances(txn, &work)?;
        let all_recorded = accepted.iter().all(|a| *a);
        if whole_intent && all_recorded {
            dropbox_intents::delete_intent(txn, intent)?;
        }
        Ok(Ok::<_, DbError>(accepted))
    })
}

fn records_for(placed: &Placement, record_as: &RecordAs, now: Timestamp) -> (File, Instance) {
    let checksum = placed
        .digests
        .get(record_as.algorithm)
        .cloned()
        .expect("the recorded algorithm is computed when the bytes are read");
    let file = File {
        name: placed.opened.name.clone(),
        create_time: now,
        size: placed.digests.size,
        checksum,
        uploader: record_as.uploader.to_string(),
        source: record_as.uploader.to_string(),
    };
    let instance = Instance::verified_copy(
        &file.name,
        placed.store.id,
        &placed.target,
        record_as.deletion_policy,
        placed.digests.blake3(),
        now,
    );
    (file, instance)
}
