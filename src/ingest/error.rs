//! Why an ingest step was refused or failed. The HTTP layer maps each case to a
//! status; the messages are written for the person who has to act on them.

use crate::db::DbError;
use crate::db::repo::files::Obstacle;
use crate::model::{NameError, NameTooLong, TransferStatus};

/// A refused or failed stage, upload or commit.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    #[error("upload size must not be negative (got {0})")]
    NegativeSize(i64),
    #[error("invalid checksum: {0}")]
    InvalidChecksum(String),
    #[error("the upload of {size} bytes is larger than this node accepts ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error("no store can take {size} bytes ({why})")]
    NoStore { size: u64, why: String },
    #[error("a file called '{0}' already exists")]
    NameTaken(String),
    #[error("'{name}' would lie inside the stored file '{file}', and a stored file never changes")]
    InsideStoredFile { name: String, file: String },
    #[error("'{name}' is the directory of the stored file '{file}'")]
    HoldsStoredFile { name: String, file: String },
    #[error("'{name}' nests with '{other}', which {by} is storing right now")]
    NameBusy {
        name: String,
        other: String,
        by: &'static str,
    },
    #[error("something that no record describes is already at '{name}' in store '{store}'")]
    OccupiedOnDisk { name: String, store: String },
    #[error(transparent)]
    NameTooLong(#[from] NameTooLong),
    #[error("no transfer with id {0}")]
    TransferNotFound(u64),
    #[error("transfer {0} belongs to another account")]
    NotYourTransfer(u64),
    #[error("transfer {id} is {}; stage the upload again", status.name())]
    TransferClosed { id: u64, status: TransferStatus },
    #[error("the request does not match transfer {id}: {detail}")]
    WrongTransferDetails { id: u64, detail: String },
    #[error("the staged data of transfer {0} is missing")]
    StagedDataMissing(u64),
    #[error("{0}")]
    NotPlain(String),
    #[error("the staged data does not match: expected {expected}, found {found}")]
    Mismatch { expected: String, found: String },
    #[error("store '{0}' is disabled")]
    StoreDisabled(String),
    #[error("the upload would exceed its declared size of {declared} bytes")]
    Oversized { declared: u64 },
    #[error(
        "the body ended after {received} of the {expected} bytes its manifest declares for this file"
    )]
    BodyEnded { expected: u64, received: u64 },
    #[error("the body runs on past its manifest (at least {extra} bytes more); nothing was stored")]
    BodyTooLong { extra: u64 },
    #[error("resume offset {offset} is beyond the {staged} bytes already staged")]
    BadOffset { offset: u64, staged: u64 },
    #[error("a newer stream of the same staged file took over; this one stopped")]
    StreamSuperseded,
    #[error("{context}: the store's filesystem is full ({source})")]
    NoSpace {
        context: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("internal task failed: {0}")]
    Task(String),
}

impl IngestError {
    /// Wraps an I/O error with what was being done; a full filesystem (or quota)
    /// is told apart, since the client can do something about it.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> IngestError {
        let context = context.into();
        if is_no_space(&source) {
            IngestError::NoSpace { context, source }
        } else {
            IngestError::Io { context, source }
        }
    }

    /// Wraps an I/O error met under staging: a symbolic link (or FIFO, device,
    /// or hard-linked file) where only plain files and directories belong is the
    /// client's doing and refused as such; anything else is as [`IngestError::io`].
    pub fn staging(context: impl Into<String>, source: std::io::Error) -> IngestError {
        match crate::fsroot::refusal(&source) {
            Some(refusal) => IngestError::NotPlain(refusal.to_string()),
            None => IngestError::io(context, source),
        }
    }

    /// The refusal of `name` because of a recorded file in its way.
    pub fn obstacle(name: &str, obstacle: Obstacle) -> IngestError {
        match obstacle {
            Obstacle::Same => IngestError::NameTaken(name.to_string()),
            Obstacle::Inside(file) => IngestError::InsideStoredFile {
                name: name.to_string(),
                file,
            },
            Obstacle::Holds(file) => IngestError::HoldsStoredFile {
                name: name.to_string(),
                file,
            },
        }
    }
}

/// Whether an I/O error says that the filesystem (or the user's quota) is full.
pub fn is_no_space(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT)
    ) || matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl From<tokio::task::JoinError> for IngestError {
    fn from(error: tokio::task::JoinError) -> IngestError {
        IngestError::Task(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_is_told_as_clients_expect() {
        let reason = IngestError::NameTaken("x".into()).to_string();
        assert!(reason.starts_with(crate::protocol::upload::NAME_TAKEN_START));
        let nested = IngestError::obstacle("d/x", Obstacle::Inside("d".into())).to_string();
        assert!(!nested.starts_with(crate::protocol::upload::NAME_TAKEN_START));
    }
}
