//! The node's embedded database: the only module that imports redb.
//!
//! All state (files, instances, stores, users, transfers, errors, peers) lives in one
//! redb file. Reads open a read transaction on the caller's thread; every write goes
//! through the group committer, which applies many callers' changes in one durable
//! transaction.

mod codec;
#[cfg(test)]
mod fixture;
mod group_commit;
mod legacy;
mod open;
pub mod repo;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableDatabase;

pub use codec::{Record, decode, encode};
#[cfg(test)]
pub use group_commit::COMMIT_OBSERVER;
pub use group_commit::{GroupCommitter, WriteJobResult};
pub use open::{FORMAT_VERSION, OpenError};

/// A failure of the database itself (not a refused request).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("database storage error: {0}")]
    Storage(String),
    #[error("stored {kind} record cannot be read: {reason}")]
    Decode { kind: &'static str, reason: String },
    #[error("the database writer has stopped")]
    WriterGone,
}

macro_rules! storage_errors {
    ($($error:ty),*) => {
        $(impl From<$error> for DbError {
            fn from(e: $error) -> DbError {
                DbError::Storage(e.to_string())
            }
        })*
    };
}
storage_errors!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

/// Read access shared by read and write transactions, so that repository lookups
/// work inside either.
pub trait Reads {
    /// The table type this transaction opens.
    type Table<'t, K: redb::Key + 'static, V: redb::Value + 'static>: redb::ReadableTable<K, V>
    where
        Self: 't;

    /// Opens `definition` for reading. A table missing from a fresh database reads as
    /// empty.
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: redb::TableDefinition<K, V>,
    ) -> Result<Option<Self::Table<'_, K, V>>, DbError>;
}

impl Reads for redb::ReadTransaction {
    type Table<'t, K: redb::Key + 'static, V: redb::Value + 'static> = redb::ReadOnlyTable<K, V>;

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: redb::TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, DbError> {
        match self.open_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Reads for redb::WriteTransaction {
    type Table<'t, K: redb::Key + 'static, V: redb::Value + 'static> = redb::Table<'t, K, V>;

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: redb::TableDefinition<K, V>,
    ) -> Result<Option<redb::Table<'_, K, V>>, DbError> {
        Ok(Some(self.open_table(definition)?))
    }
}

/// Handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    database: Arc<redb::Database>,
    committer: GroupCommitter,
    path: PathBuf,
}

/// A write transaction as seen by write jobs.
pub type WriteTxn = redb::WriteTransaction;

impl Db {
    /// Opens (or creates) the database at `path`, checking its format version.
    pub fn open(path: &Path) -> Result<Db, OpenError> {
        let database = Arc::new(open::open_database(path)?);
        let committer = GroupCommitter::start(database.clone(), path);
        Ok(Db {
            database,
            committer,
            path: path.to_path_buf(),
        })
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a fresh read transaction.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let transaction = self.database.begin_read()?;
        f(&transaction)
    }

    /// Queues a write job and waits (asynchronously) for its durable commit. The job's
    /// inner `Err` is a refusal: by contract the job wrote nothing before refusing.
    pub async fn write<R, E>(
        &self,
        job: impl FnOnce(&WriteTxn) -> WriteJobResult<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.committer.submit(job).await
    }

    /// Like [`Db::write`], for callers outside the async runtime.
    pub fn write_blocking<R, E>(
        &self,
        job: impl FnOnce(&WriteTxn) -> WriteJobResult<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.committer.submit_blocking(job)
    }
}
