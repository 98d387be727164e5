//! The upstream half of corruption repair (`corrupt/prepare`, `corrupt/resend`):
//! a downstream librarian found its copy of a file corrupt and asks this node,
//! which sent it, for a new one.
//!
//! Both check the same things, in the reference's order: the caller is the
//! librarian it names (its account is named after it) and a known peer, and this
//! node sent it the file (a remote instance there or a transfer to it); this node
//! holds an available copy, which is hashed afresh now and must match (a copy
//! found corrupt here too is recorded so, and refused); and this node can send to
//! it (the queue tasks are configured, transfers to it are enabled, and it accepts
//! this node's credentials). `resend` then forgets the remote instances of the
//! file at the caller and sends the file as `send_clone` would, in a batch of one.

use std::sync::Arc;
use std::time::Duration;

use super::send_clone::send_batch;
use crate::config::tasks::TaskKind;
use crate::db::DbError;
use crate::db::repo::{files, instances, librarians, transfers};
use crate::integrity;
use crate::model::{File, Instance, Librarian, TransferStatus};
use crate::node::Node;
use crate::peer::registry::client_for_peer;
use crate::tasks::TaskContext;

/// Why a repair is refused.
#[derive(Debug, thiserror::Error)]
pub enum ResendRefusal {
    /// The caller is not the librarian it names, or not a known peer (401).
    #[error("Unauthorized")]
    NotTheLibrarian,
    /// This node has no available copy (409).
    #[error("We do not have a copy of the file you are requesting")]
    NoCopy,
    /// This node's copy is corrupt too (409).
    #[error("Our copy of the file is also corrupt")]
    CopyCorrupt,
    /// This node cannot send to the caller now (409), and why.
    #[error("We are not able to send you files: {0}")]
    CannotSend(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a repair sends: to whom, which file, from which copy.
struct Checked {
    peer: Librarian,
    file: File,
    instance: Instance,
}

/// `corrupt/prepare`: whether a new copy can be sent. Blocking.
pub fn prepare(
    node: &Arc<Node>,
    runtime: tokio::runtime::Handle,
    caller: &str,
    librarian_name: &str,
    file_name: &str,
) -> Result<(), ResendRefusal> {
    check(node, &runtime, caller, librarian_name, file_name).map(|_| ())
}

/// `corrupt/resend`: sends a new copy; returns the caller's incoming transfer id
/// for it. Blocking.
pub fn resend(
    node: &Arc<Node>,
    runtime: tokio::runtime::Handle,
    caller: &str,
    librarian_name: &str,
    file_name: &str,
) -> Result<u64, ResendRefusal> {
    let Checked {
        peer,
        file,
        instance,
    } = check(node, &runtime, caller, librarian_name, file_name)?;
    let (name, destination) = (file.name.clone(), peer.name.clone());
    node.db.write_blocking(move |txn| {
        for remote in instances::remotes_of_file(txn, &name)? {
            if remote.librarian_name == destination {
                instances::delete_remote(txn, &remote)?;
            }
        }
        Ok(Ok::<_, DbError>(()))
    })?;
    let client =
        client_for_peer(node, &peer).map_err(|e| ResendRefusal::CannotSend(e.to_string()))?;
    let context = TaskContext::new(
        node.clone(),
        format!("corrupt/resend of {}", file.name),
        runtime,
        None,
        Default::default(),
    );
    send_batch(&context, &client, &peer.name, &[(file.clone(), instance)])
        .map_err(|e| ResendRefusal::CannotSend(e.to_string()))?;
    let sent = node.db.read(|tx| {
        Ok(transfers::live_outgoing_to(tx, &peer.name)?
            .into_iter()
            .filter(|t| t.file_name == file.name && t.status != TransferStatus::Initiated)
            .filter_map(|t| t.remote_transfer_id)
            .next_back())
    })?;
    sent.ok_or_else(|| {
        let (_, _, last_error) = context.counts();
        ResendRefusal::CannotSend(last_error.unwrap_or_else(|| "the batch was not staged".into()))
    })
}

fn check(
    node: &Arc<Node>,
    runtime: &tokio::runtime::Handle,
    caller: &str,
    librarian_name: &str,
    file_name: &str,
) -> Result<Checked, ResendRefusal> {
    let (peer, file, copies) = node.db.read(|tx| {
        Ok((
            librarians::get_librarian(tx, librarian_name)?,
            files::get_file(tx, file_name)?,
            instances::of_file(tx, file_name)?,
        ))
    })?;
    let Some(peer) = peer.filter(|_| caller == librarian_name) else {
        return Err(ResendRefusal::NotTheLibrarian);
    };
    let Some(file) = file else {
        return Err(ResendRefusal::NoCopy);
    };
    // Only a file this node sent to the caller (a copy recorded there, or a
    // transfer to it) is sent again: a peer cannot pull any file it likes.
    let sent_there = node.db.read(|tx| {
        Ok(instances::remotes_of_file(tx, file_name)?
            .iter()
            .any(|r| r.librarian_name == peer.name)
            || transfers::all_outgoing(tx)?
                .iter()
                .any(|t| t.destination == peer.name && t.file_name == file_name))
    })?;
    if !sent_there {
        return Err(ResendRefusal::NotTheLibrarian);
    }
    let Some(instance) = copies
        .into_iter()
        .find(|i| i.available && node.stores.is_here(i.store_id))
    else {
        return Err(ResendRefusal::NoCopy);
    };
    let outcome = integrity::verify_instance(&node.stores, &file, &instance, Duration::ZERO);
    integrity::record_outcome(&node.db, &file, &outcome, caller)?;
    if !outcome.matches {
        return Err(ResendRefusal::CopyCorrupt);
    }
    let configured = |wanted: fn(&TaskKind) -> bool| {
        node.config.task_specs.iter().any(|spec| wanted(&spec.kind))
    };
    if !configured(|k| matches!(k, TaskKind::ConsumeQueue(_)))
        || !configured(|k| matches!(k, TaskKind::CheckConsumedQueue(_)))
    {
        return Err(ResendRefusal::CannotSend(
            "this node runs no consume_queue and check_consumed_queue tasks".into(),
        ));
    }
    if !peer.transfers_enabled {
        return Err(ResendRefusal::CannotSend(format!(
            "transfers to {} are disabled here",
            peer.name
        )));
    }
    let client =
        client_for_peer(node, &peer).map_err(|e| ResendRefusal::CannotSend(e.to_string()))?;
    runtime
        .block_on(client.ping_logged())
        .map_err(|e| ResendRefusal::CannotSend(format!("cannot log in to {}: {e}", peer.name)))?;
    Ok(Checked {
        peer,
        file,
        instance,
    })
}
