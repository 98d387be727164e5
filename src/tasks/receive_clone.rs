//! `recieve_clone`: store the clones that peers (or a manifest ingest) have STAGED
//! here, then tell each clone's source librarian how it ended.
//!
//! Storing goes through the upload commit path (`ingest::commit_staged_clones`):
//! verify size and checksum, move into the store durably, record File + Instance
//! (uploader and source as the transfer names them) and the transfer COMPLETED, or
//! FAILED when the bytes are wrong or the name is taken. Either way the callback
//! owed to the source is recorded in that same transaction, and delivered by
//! `clone_callbacks` afterwards, in this run or, while the source cannot be
//! reached, a later one.

use std::collections::BTreeMap;

use super::TaskContext;
use super::clone_callbacks::deliver_owed;
use crate::config::tasks::ReceiveClone;
use crate::db::repo::transfers;
use crate::ingest::{CloneCommit, commit_staged_clones};
use crate::model::{IncomingTransfer, TransferStatus};

/// Most clones committed together (one durable sync, one transaction).
const CHUNK_ITEMS: usize = 512;
/// Most bytes committed together, so that the soft timeout is checked often.
const CHUNK_BYTES: u64 = 1 << 30;

/// Runs one pass: at most `files_per_run` staged clones, then the owed callbacks.
pub fn run(context: &TaskContext, settings: &ReceiveClone) -> anyhow::Result<()> {
    let node = context.node();
    let staged = node.db.read(|tx| {
        transfers::live_incoming_in(tx, TransferStatus::Staged, settings.files_per_run)
    })?;
    // Staged clones whose store cannot take them now, by reason: reported once per
    // reason, not once per file.
    let mut waiting: BTreeMap<String, usize> = BTreeMap::new();
    for chunk in chunks(staged) {
        if !context.keep_going() {
            break;
        }
        let names: Vec<(u64, String)> = chunk
            .iter()
            .map(|t| (t.id, t.destination_location.clone()))
            .collect();
        let results =
            context.block_on(commit_staged_clones(node, chunk, settings.deletion_policy))?;
        for ((id, name), result) in names.into_iter().zip(results) {
            match result {
                CloneCommit::Stored => context.item_done(),
                CloneCommit::Failed(error) => {
                    context.item_failed(format!("clone {id} of '{name}' failed: {error}"))
                }
                CloneCommit::Deferred(error) => *waiting.entry(error.to_string()).or_default() += 1,
            }
        }
    }
    for (reason, count) in waiting {
        context.item_failed(format!("{count} staged clones wait: {reason}"));
    }
    deliver_owed(context)
}

/// Splits staged transfers into commit batches of bounded count and size.
fn chunks(staged: Vec<IncomingTransfer>) -> Vec<Vec<IncomingTransfer>> {
    let mut chunks: Vec<Vec<IncomingTransfer>> = Vec::new();
    let mut bytes = 0;
    for transfer in staged {
        let full = chunks
            .last()
            .is_none_or(|c| c.len() >= CHUNK_ITEMS || bytes >= CHUNK_BYTES);
        if full {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += transfer.transfer_size;
        chunks
            .last_mut()
            .expect("a chunk was pushed")
            .push(transfer);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Checksum, Timestamp};

    fn staged(id: u64, size: u64) -> IncomingTransfer {
        IncomingTransfer {
            id,
            status: TransferStatus::Staged,
            uploader: "u".into(),
            source: "s".into(),
            transfer_size: size,
            transfer_checksum: Checksum::parse("md5:::d41d8cd98f00b204e9800998ecf8427e").unwrap(),
            store_id: 1,
            staging_name: "s".into(),
            upload_name: "n".into(),
            destination_location: format!("n{id}"),
            start_time: Timestamp::now(),
            end_time: None,
            source_transfer_id: None,
            record_algorithm: None,
        }
    }

    #[test]
    fn chunks_are_bounded_by_count_and_by_bytes() {
        let count = 2 * CHUNK_ITEMS as u64 + 2;
        let many: Vec<_> = (0..count).map(|id| staged(id, 1)).collect();
        let sizes: Vec<usize> = chunks(many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![CHUNK_ITEMS, CHUNK_ITEMS, 2]);
        let big: Vec<_> = (0..3).map(|id| staged(id, CHUNK_BYTES)).collect();
        assert_eq!(
            chunks(big).len(),
            3,
            "a chunk stops once it holds CHUNK_BYTES"
        );
        assert!(chunks(Vec::new()).is_empty());
    }
}
