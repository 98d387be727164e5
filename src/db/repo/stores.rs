//! The database's view of stores: stable ids and the enabled flag.

use super::{all_by_id, put};
use crate::db::tables::STORES;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::StoreState;

/// Every store the database knows, by id.
pub fn all_stores(tx: &impl Reads) -> Result<Vec<StoreState>, DbError> {
    all_by_id(tx, STORES)
}

/// Creates or updates a store's state.
pub fn put_store(txn: &WriteTxn, store: &StoreState) -> Result<(), DbError> {
    put(txn, STORES, store.id, store)
}
