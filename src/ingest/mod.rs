//! The rules that turn bytes into records: staging an upload, receiving its bytes
//! over the network, and committing it durably.
//!
//! Invariant (design.md): bytes are synced and renamed into the store before the
//! database transaction that records them commits, so after a crash there is either
//! no record or a record whose bytes are complete and verified.

mod batch_put;
mod clone_batch_stage;
mod clone_stage;
mod commit;
mod error;
mod leftovers;
mod stage;
mod stream;
mod stream_batch;
pub mod transfer_state;

pub use batch_put::recovery::{UploadRecovery, recover_upload_intents};
pub use batch_put::{
    BatchPutInput, MAX_FILES as MAX_BATCH_PUT_FILES, PutFile, PutOutcome, put_batch,
};
pub use clone_batch_stage::{CloneBatchError, MAX_CLONE_BATCH, stage_clone_batch};
pub use clone_stage::{CloneStageError, CloneStageInput, stage_clone};
pub use commit::{CloneCommit, CommitInput, commit_staged_clones, commit_upload, commit_uploads};
pub use error::IngestError;
pub use stage::{StageInput, StageOutput, StagingLayout, stage_upload, stage_uploads};
pub use stream::{StreamTarget, receive_stream, stream_status};
pub use stream_batch::{
    BatchStreamFile, BatchStreamOutcome, MAX_STREAM_BATCH_FILES, receive_stream_batch,
};
