//! Repositories: typed reads and writes of each entity, usable inside any read
//! transaction (reads) or inside a group-commit write job (writes).
//!
//! Invariant: every write function keeps an entity's index tables in step with its
//! primary table, in the same transaction.

pub mod callbacks;
pub mod dropbox_intents;
pub mod errors;
pub mod files;
pub mod instances;
pub mod librarians;
pub mod send_queue;
pub mod stores;
pub mod transfers;
pub mod upload_intents;
pub mod users;

use redb::{ReadableTable, TableDefinition};

use super::codec::{Record, decode, encode};
use super::tables::COUNTERS;
use super::{DbError, Reads, WriteTxn};

/// Reads and decodes one record by key.
fn get<'k, K, R>(
    tx: &impl Reads,
    definition: TableDefinition<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
) -> Result<Option<R>, DbError>
where
    K: redb::Key + 'static,
    R: Record,
{
    let Some(table) = tx.table(definition)? else {
        return Ok(None);
    };
    let found = table.get(key)?;
    found.map(|value| decode(value.value())).transpose()
}

/// Encodes and stores one record.
fn put<'k, K, R>(
    txn: &WriteTxn,
    definition: TableDefinition<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
    record: &R,
) -> Result<(), DbError>
where
    K: redb::Key + 'static,
    R: Record,
{
    let mut table = txn.open_table(definition)?;
    table.insert(key, encode(record).as_slice())?;
    Ok(())
}

/// Every record of a table keyed by integer id, in id order.
fn all_by_id<R: Record>(
    tx: &impl Reads,
    definition: TableDefinition<u64, &'static [u8]>,
) -> Result<Vec<R>, DbError> {
    let Some(table) = tx.table(definition)? else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    for entry in table.iter()? {
        let (_, value) = entry?;
        records.push(decode(value.value())?);
    }
    Ok(records)
}

/// Hands out the next id for `kind` (ids start at 1 and are never reused).
pub fn next_id(txn: &WriteTxn, kind: &str) -> Result<u64, DbError> {
    next_ids(txn, kind, 1)
}

/// Hands out `count` consecutive ids for `kind` and returns the first.
pub fn next_ids(txn: &WriteTxn, kind: &str, count: u64) -> Result<u64, DbError> {
    let mut table = txn.open_table(COUNTERS)?;
    let first = table.get(kind)?.map(|v| v.value()).unwrap_or(0) + 1;
    table.insert(kind, first + count.saturating_sub(1))?;
    Ok(first)
}
