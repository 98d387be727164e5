//! Background tasks: the scheduler inside `quire serve` and the tasks it runs.
//!
//! `config` parses task entries (TOML or Librarian background JSON), `scheduler` runs
//! each task once at start-up and then on its cadence, never overlapping itself,
//! `context` is what a run sees. One file per task type.

mod check_integrity;
mod clone_callbacks;
mod clone_targets;
mod context;
mod corruption_fixer;
mod create_local_clone;
mod downstream;
mod duplicate_remote_instance_hypervisor;
mod incoming_transfer_hypervisor;
mod local_copy;
mod outgoing_transfer_hypervisor;
mod receive_clone;
mod rolling_deletion;
mod scheduler;
mod sending;
mod store_watch;

pub use crate::config::tasks::{TaskKind, TaskSpec};
pub use context::{Interruption, TaskContext};
pub use scheduler::{Tasks, UnknownTask, wait_for};
pub use sending::resend::{ResendRefusal, prepare as prepare_resend, resend};

/// Runs one task to completion (or to its soft timeout) on the calling blocking
/// thread. Failures of single items are counted in the context; an `Err` means the
/// run as a whole could not proceed.
pub(crate) fn run_task(context: &TaskContext, kind: &TaskKind) -> anyhow::Result<()> {
    match kind {
        TaskKind::CheckIntegrity(settings) => check_integrity::run(context, settings),
        TaskKind::CreateLocalClone(settings) => create_local_clone::run(context, settings),
        TaskKind::ReceiveClone(settings) => receive_clone::run(context, settings),
        TaskKind::RollingDeletion(settings) => rolling_deletion::run(context, settings),
        TaskKind::DuplicateRemoteInstanceHypervisor(settings) => {
            duplicate_remote_instance_hypervisor::run(context, settings)
        }
        TaskKind::OutgoingTransferHypervisor(settings) => {
            outgoing_transfer_hypervisor::run(context, settings)
        }
        TaskKind::IncomingTransferHypervisor(settings) => {
            incoming_transfer_hypervisor::run(context, settings)
        }
        TaskKind::SendClone(settings) => sending::send_clone::run(context, settings),
        TaskKind::ConsumeQueue(settings) => sending::consume_queue::run(context, settings),
        TaskKind::CheckConsumedQueue(settings) => {
            sending::check_consumed_queue::run(context, settings)
        }
        TaskKind::CorruptionFixer(settings) => corruption_fixer::run(context, settings),
    }
}
