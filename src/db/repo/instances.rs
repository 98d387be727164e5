//! Local instances (copies in this node's stores) and remote instances (copies peers
//! hold), with their by-file and by-store indexes.

use redb::ReadableTable;

use super::{get, put};
use crate::db::codec::{decode, encode};
use crate::db::tables::{
    CORRUPT_FILES, CORRUPT_REPAIRS, INSTANCES, INSTANCES_BY_FILE, INSTANCES_BY_STORE,
    REMOTE_INSTANCES, REMOTE_INSTANCES_BY_FILE,
};
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{CorruptFile, DeletionPolicy, Instance, RemoteInstance, Timestamp};

/// The instance with `id`.
pub fn get_instance(tx: &impl Reads, id: u64) -> Result<Option<Instance>, DbError> {
    get(tx, INSTANCES, id)
}

/// Records a new instance, or rewrites an existing one (same id, file and store).
pub fn put_instance(txn: &WriteTxn, instance: &Instance) -> Result<(), DbError> {
    put_instances(txn, std::slice::from_ref(instance))
}

/// Records (or rewrites) instances, opening each table once.
pub fn put_instances(txn: &WriteTxn, new_instances: &[Instance]) -> Result<(), DbError> {
    let mut table = txn.open_table(INSTANCES)?;
    let mut by_file = txn.open_table(INSTANCES_BY_FILE)?;
    let mut by_store = txn.open_table(INSTANCES_BY_STORE)?;
    for instance in new_instances {
        table.insert(instance.id, encode(instance).as_slice())?;
        by_file.insert((instance.file_name.as_str(), instance.id), ())?;
        by_store.insert((instance.store_id, instance.id), ())?;
    }
    Ok(())
}

/// Removes an instance record.
pub fn delete_instance(txn: &WriteTxn, instance: &Instance) -> Result<(), DbError> {
    txn.open_table(INSTANCES)?.remove(instance.id)?;
    txn.open_table(INSTANCES_BY_FILE)?
        .remove((instance.file_name.as_str(), instance.id))?;
    txn.open_table(INSTANCES_BY_STORE)?
        .remove((instance.store_id, instance.id))?;
    Ok(())
}

/// Ids of the instances of one file, oldest first.
fn ids_of_file(tx: &impl Reads, file_name: &str) -> Result<Vec<u64>, DbError> {
    let Some(table) = tx.table(INSTANCES_BY_FILE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.range((file_name, 0)..=(file_name, u64::MAX))? {
        ids.push(entry?.0.value().1);
    }
    Ok(ids)
}

/// The local instances of a file, oldest first.
pub fn of_file(tx: &impl Reads, file_name: &str) -> Result<Vec<Instance>, DbError> {
    let mut instances = Vec::new();
    for id in ids_of_file(tx, file_name)? {
        instances.extend(get_instance(tx, id)?);
    }
    Ok(instances)
}

/// Whether `file_name` has an instance recorded in `store_id` at `path`.
pub fn recorded_at(
    tx: &impl Reads,
    file_name: &str,
    store_id: u64,
    path: &str,
) -> Result<bool, DbError> {
    Ok(of_file(tx, file_name)?
        .iter()
        .any(|i| i.store_id == store_id && i.path == path))
}

/// Filters of a local-instance search.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    pub id: Option<u64>,
    pub path: Option<String>,
    pub deletion_policy: Option<DeletionPolicy>,
    pub created_time: Option<Timestamp>,
    pub file_name: Option<String>,
    pub store_id: Option<u64>,
    pub available: Option<bool>,
    /// Stores that are away now: their instances count as unavailable.
    pub away_stores: Vec<u64>,
    pub limit: usize,
}

impl InstanceQuery {
    fn accepts(&self, i: &Instance) -> bool {
        let available = i.available && !self.away_stores.contains(&i.store_id);
        self.id.is_none_or(|id| id == i.id)
            && self.path.as_ref().is_none_or(|p| *p == i.path)
            && self.deletion_policy.is_none_or(|d| d == i.deletion_policy)
            && self.created_time.is_none_or(|t| t == i.created_time)
            && self.file_name.as_ref().is_none_or(|f| *f == i.file_name)
            && self.store_id.is_none_or(|s| s == i.store_id)
            && self.available.is_none_or(|a| a == available)
    }
}

/// Local instances matching `query`, newest first.
pub fn search(tx: &impl Reads, query: &InstanceQuery) -> Result<Vec<Instance>, DbError> {
    let candidates: Box<dyn Iterator<Item = u64>> = if let Some(id) = query.id {
        Box::new(std::iter::once(id))
    } else if let Some(name) = &query.file_name {
        Box::new(ids_of_file(tx, name)?.into_iter().rev())
    } else if let Some(store) = query.store_id {
        Box::new(ids_of_store(tx, store)?.into_iter().rev())
    } else {
        Box::new(all_ids(tx)?.into_iter().rev())
    };
    let mut found = Vec::new();
    for id in candidates {
        if found.len() >= query.limit {
            break;
        }
        if let Some(instance) = get_instance(tx, id)?
            && query.accepts(&instance)
        {
            found.push(instance);
        }
    }
    Ok(found)
}

/// Ids of the instances on one store, oldest first.
pub fn ids_of_store(tx: &impl Reads, store_id: u64) -> Result<Vec<u64>, DbError> {
    let Some(table) = tx.table(INSTANCES_BY_STORE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.range((store_id, 0)..=(store_id, u64::MAX))? {
        ids.push(entry?.0.value().1);
    }
    Ok(ids)
}

fn all_ids(tx: &impl Reads) -> Result<Vec<u64>, DbError> {
    let Some(table) = tx.table(INSTANCES)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.iter()? {
        ids.push(entry?.0.value());
    }
    Ok(ids)
}

/// Records a remote instance.
pub fn put_remote(txn: &WriteTxn, remote: &RemoteInstance) -> Result<(), DbError> {
    put(txn, REMOTE_INSTANCES, remote.id, remote)?;
    txn.open_table(REMOTE_INSTANCES_BY_FILE)?
        .insert((remote.file_name.as_str(), remote.id), ())?;
    Ok(())
}

/// Removes a remote instance record.
pub fn delete_remote(txn: &WriteTxn, remote: &RemoteInstance) -> Result<(), DbError> {
    txn.open_table(REMOTE_INSTANCES)?.remove(remote.id)?;
    txn.open_table(REMOTE_INSTANCES_BY_FILE)?
        .remove((remote.file_name.as_str(), remote.id))?;
    Ok(())
}

/// The remote instance with `id`.
pub fn get_remote(tx: &impl Reads, id: u64) -> Result<Option<RemoteInstance>, DbError> {
    get(tx, REMOTE_INSTANCES, id)
}

/// The remote instances of a file, oldest first.
pub fn remotes_of_file(tx: &impl Reads, file_name: &str) -> Result<Vec<RemoteInstance>, DbError> {
    let Some(index) = tx.table(REMOTE_INSTANCES_BY_FILE)? else {
        return Ok(Vec::new());
    };
    let mut remotes = Vec::new();
    for entry in index.range((file_name, 0)..=(file_name, u64::MAX))? {
        remotes.extend(get_remote(tx, entry?.0.value().1)?);
    }
    Ok(remotes)
}

/// Every remote instance, newest first, passing `keep`, at most `limit`.
pub fn search_remote(
    tx: &impl Reads,
    limit: usize,
    keep: impl Fn(&RemoteInstance) -> bool,
) -> Result<Vec<RemoteInstance>, DbError> {
    let Some(table) = tx.table(REMOTE_INSTANCES)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in table.iter()?.rev() {
        if found.len() >= limit {
            break;
        }
        let remote: RemoteInstance = decode(entry?.1.value())?;
        if keep(&remote) {
            found.push(remote);
        }
    }
    Ok(found)
}

/// The corrupt-file record of an instance, if any.
pub fn corrupt_record_of(
    tx: &impl Reads,
    instance_id: u64,
) -> Result<Option<CorruptFile>, DbError> {
    let Some(table) = tx.table(CORRUPT_FILES)? else {
        return Ok(None);
    };
    for entry in table.iter()? {
        let record: CorruptFile = decode(entry?.1.value())?;
        if record.instance_id == instance_id {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// Records (or updates) a corrupt-file record.
pub fn put_corrupt(txn: &WriteTxn, record: &CorruptFile) -> Result<(), DbError> {
    put(txn, CORRUPT_FILES, record.id, record)
}

/// Removes a corrupt-file record.
pub fn delete_corrupt(txn: &WriteTxn, id: u64) -> Result<(), DbError> {
    txn.open_table(CORRUPT_FILES)?.remove(id)?;
    Ok(())
}

/// Every corrupt-file record, in id order.
pub fn all_corrupt(tx: &impl Reads) -> Result<Vec<CorruptFile>, DbError> {
    super::all_by_id(tx, CORRUPT_FILES)
}

/// A repair under way (see `CORRUPT_REPAIRS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// When the bad copy was given up.
    pub since: Timestamp,
    /// The incoming transfer bringing the new copy; `None` until the source
    /// agreed to send it.
    pub transfer: Option<u64>,
    /// The librarian asked for the new copy.
    pub source: String,
}

/// The repair under way for a corrupt-file record.
pub fn repair_of(tx: &impl Reads, corrupt_id: u64) -> Result<Option<Repair>, DbError> {
    let Some(table) = tx.table(CORRUPT_REPAIRS)? else {
        return Ok(None);
    };
    Ok(table.get(corrupt_id)?.map(|v| {
        let (micros, transfer, source) = v.value();
        Repair {
            since: Timestamp::from_micros(micros),
            transfer: (transfer != 0).then_some(transfer),
            source: source.to_string(),
        }
    }))
}

/// Records (or updates) the repair of a corrupt-file record.
pub fn put_repair(txn: &WriteTxn, corrupt_id: u64, repair: &Repair) -> Result<(), DbError> {
    txn.open_table(CORRUPT_REPAIRS)?.insert(
        corrupt_id,
        (
            repair.since.as_micros(),
            repair.transfer.unwrap_or(0),
            repair.source.as_str(),
        ),
    )?;
    Ok(())
}

/// Forgets the repair of a corrupt-file record.
pub fn delete_repair(txn: &WriteTxn, corrupt_id: u64) -> Result<(), DbError> {
    txn.open_table(CORRUPT_REPAIRS)?.remove(corrupt_id)?;
    Ok(())
}
