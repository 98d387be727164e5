//! Recorded errors.

use super::{all_by_id, get, next_id, put};
use crate::db::tables::ERRORS;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{ErrorCategory, ErrorRecord, ErrorSeverity, Timestamp};

/// The error with `id`.
pub fn get_error(tx: &impl Reads, id: u64) -> Result<Option<ErrorRecord>, DbError> {
    get(tx, ERRORS, id)
}

/// Stores (or updates) an error record.
pub fn put_error(txn: &WriteTxn, record: &ErrorRecord) -> Result<(), DbError> {
    put(txn, ERRORS, record.id, record)
}

/// Records a new, uncleared error and returns it.
pub fn raise(
    txn: &WriteTxn,
    severity: ErrorSeverity,
    category: ErrorCategory,
    message: String,
    caller: Option<String>,
) -> Result<ErrorRecord, DbError> {
    let record = ErrorRecord {
        id: next_id(txn, "errors")?,
        severity,
        category,
        message,
        raised_time: Timestamp::now(),
        cleared_time: None,
        cleared: false,
        caller,
    };
    put_error(txn, &record)?;
    Ok(record)
}

/// Every error, newest first.
pub fn all_errors_newest_first(tx: &impl Reads) -> Result<Vec<ErrorRecord>, DbError> {
    let mut records: Vec<ErrorRecord> = all_by_id(tx, ERRORS)?;
    records.reverse();
    Ok(records)
}
