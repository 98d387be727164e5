//! The two transactions of a batch upload: the intent (which inode is about to be
//! named where), durable before any name appears; then File + Instance for every
//! named file, in the transaction that forgets the intent. And taking back what
//! was named but not recorded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::receive::Received;
use crate::checksum::Digests;
use crate::db::DbError;
use crate::db::repo::{files, next_id, upload_intents};
use crate::ingest::IngestError;
use crate::model::{Checksum, DeletionPolicy, File, Instance, NamedItem, Timestamp, UploadIntent};
use crate::node::Node;
use crate::store::Store;

/// Who stored a batch's files, and how they may be deleted: what each record says
/// besides the file itself.
pub struct RecordAs {
    /// The authenticated caller: each file's source.
    pub caller: String,
    pub uploader: String,
    pub deletion_policy: DeletionPolicy,
}

/// A file named in the store, waiting for its record.
pub struct Named {
    /// Its place in the request.
    pub index: usize,
    pub name: String,
    pub checksum: Checksum,
    pub digests: Digests,
    pub target: PathBuf,
}

/// Records (durably) the intent to name the received files; returns it.
pub async fn write_intent(
    node: &Node,
    store: &Store,
    received: &[(usize, Received)],
) -> Result<UploadIntent, IngestError> {
    let items: Vec<NamedItem> = received
        .iter()
        .map(|(_, r)| NamedItem {
            name: r.name.clone(),
            target: r.file.target().to_string_lossy().into_owned(),
            device: r.device,
            inode: r.inode,
        })
        .collect();
    let store_id = store.id;
    node.db
        .write(move |txn| {
            let intent = UploadIntent {
                id: next_id(txn, "upload_intents")?,
                store_id,
                items,
            };
            upload_intents::put_intent(txn, &intent)?;
            Ok(Ok::<_, IngestError>(intent))
        })
        .await
}

/// Records every named file in one transaction; `true` for each file recorded.
/// A file whose name was recorded meanwhile (in another store) is refused and
/// nothing written for it. When `whole_intent` (these are all the intent's
/// files) and every file is recorded, the intent is forgotten in the same
/// transaction; otherwise the caller takes back what is not recorded.
pub async fn record_named(
    node: &Node,
    store: &Store,
    record_as: &RecordAs,
    intent: u64,
    named: &[Named],
    whole_intent: bool,
) -> Result<Vec<bool>, IngestError> {
    let now = Timestamp::now();
    let work: Vec<(File, Instance)> = named
        .iter()
        .map(|n| {
            let file = File {
                name: n.name.clone(),
                create_time: now,
                size: n.digests.size,
                checksum: n.checksum.clone(),
                uploader: record_as.uploader.clone(),
                source: record_as.caller.clone(),
            };
            let instance = Instance::verified_copy(
                &n.name,
                store.id,
                &n.target,
                record_as.deletion_policy,
                n.digests.blake3(),
                now,
            );
            (file, instance)
        })
        .collect();
    node.db
        .write(move |txn| {
            let recorded = files::record_with_instances(txn, &work)?;
            if whole_intent && recorded.iter().all(|r| *r) {
                upload_intents::delete_intent(txn, intent)?;
            }
            Ok(Ok::<_, IngestError>(recorded))
        })
        .await
}

/// Takes back every file of `intent` not in `recorded` (if it is still the inode
/// named there), then forgets the intent. A failure is logged and the intent
/// kept: start-up tries again.
pub async fn take_back_unrecorded(
    node: &Arc<Node>,
    intent: UploadIntent,
    recorded: HashSet<String>,
) {
    let node = node.clone();
    let settled = tokio::task::spawn_blocking(move || {
        let mut clean = true;
        let store = node.stores.by_id(intent.store_id).cloned();
        for item in intent.items.iter().filter(|i| !recorded.contains(&i.name)) {
            let taken = match &store {
                Some(store) => store.take_back(Path::new(&item.target), item.device, item.inode),
                None => Err(std::io::Error::other("its store is not configured")),
            };
            if let Err(error) = taken {
                tracing::error!(target = %item.target, %error, "cannot take back an unrecorded upload; start-up will");
                clean = false;
            }
        }
        if clean {
            forget_intent(&node, intent.id)?;
        }
        Ok::<_, DbError>(())
    })
    .await;
    match settled {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "cannot forget an upload intent; start-up will"),
        Err(error) => tracing::warn!(%error, "cannot settle an upload intent; start-up will"),
    }
}

/// Forgets an intent whose files are recorded or taken back.
pub fn forget_intent(node: &Node, id: u64) -> Result<(), DbError> {
    node.db.write_blocking(move |txn| {
        upload_intents::delete_intent(txn, id)?;
        Ok(Ok::<_, DbError>(()))
    })
}
