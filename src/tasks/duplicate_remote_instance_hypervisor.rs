//! `duplicate_remote_instance_hypervisor`: where a file has several remote
//! instances on the same librarian and store, keep the oldest (earliest copy time,
//! then lowest id) and delete the others.
//!
//! Invariant: every (file, librarian, store) that had a remote instance still has
//! exactly one afterwards; only records are removed, never bytes.

use std::collections::BTreeMap;

use super::TaskContext;
use crate::config::tasks::DuplicateRemoteInstanceHypervisor;
use crate::db::DbError;
use crate::db::repo::instances;
use crate::model::RemoteInstance;

/// Duplicate groups settled per write transaction (between two checks of the soft
/// timeout).
const GROUPS_PER_WRITE: usize = 256;

/// Runs one pass over every remote instance.
pub fn run(
    context: &TaskContext,
    _settings: &DuplicateRemoteInstanceHypervisor,
) -> anyhow::Result<()> {
    let node = context.node();
    let all = node
        .db
        .read(|tx| instances::search_remote(tx, usize::MAX, |_| true))?;
    let mut groups: BTreeMap<(String, String, u64), Vec<RemoteInstance>> = BTreeMap::new();
    for remote in all {
        let key = (
            remote.file_name.clone(),
            remote.librarian_name.clone(),
            remote.store_id,
        );
        groups.entry(key).or_default().push(remote);
    }
    let duplicated: Vec<Vec<RemoteInstance>> =
        groups.into_values().filter(|g| g.len() > 1).collect();
    for chunk in duplicated.chunks(GROUPS_PER_WRITE) {
        if !context.keep_going() {
            break;
        }
        let doomed: Vec<RemoteInstance> = chunk.iter().flat_map(|g| all_but_oldest(g)).collect();
        let removed = node.db.write_blocking(move |txn| {
            let mut removed = 0u64;
            for remote in &doomed {
                // Read again: another writer may have removed it meanwhile.
                if instances::get_remote(txn, remote.id)?.is_some() {
                    instances::delete_remote(txn, remote)?;
                    removed += 1;
                }
            }
            Ok(Ok::<_, DbError>(removed))
        })?;
        for _ in 0..removed {
            context.item_done();
        }
    }
    Ok(())
}

/// Every member of a group except its oldest.
fn all_but_oldest(group: &[RemoteInstance]) -> Vec<RemoteInstance> {
    let mut sorted = group.to_vec();
    sorted.sort_by_key(|r| (r.copy_time, r.id));
    sorted.split_off(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn remote(id: u64, copied_at: i64) -> RemoteInstance {
        RemoteInstance {
            id,
            file_name: "f".into(),
            librarian_name: "peer".into(),
            store_id: 1,
            copy_time: Timestamp::from_micros(copied_at),
            sender: "me".into(),
        }
    }

    #[test]
    fn the_oldest_copy_stays_and_ties_keep_the_lowest_id() {
        let doomed = all_but_oldest(&[remote(5, 30), remote(7, 10), remote(6, 10)]);
        let ids: Vec<u64> = doomed.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![7, 5]);
    }
}
