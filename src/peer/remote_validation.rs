//! The remote half of `validate/file`: every librarian that holds a remote
//! instance of the file is asked, all at once, to validate its own copies.
//!
//! Invariant: each remote instance is accounted for. A librarian that answers
//! contributes its own rows; one that cannot be asked (unknown, unusable
//! credentials, down, slower than [`REMOTE_VALIDATION_TIMEOUT`]) contributes one
//! row per remote instance it holds, marked `unreachable` with the reason, so a
//! copy that was not checked never looks like one that was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::registry::client_for;
use crate::model::{File, RemoteInstance};
use crate::node::Node;
use crate::protocol::validate::{FileValidationRequest, FileValidationResponseItem};

/// How long one librarian may take to answer the ping and validate its copies.
pub const REMOTE_VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Asks every librarian holding one of `remotes` to validate its copies of
/// `file`, hashing them now if `fresh`; returns their rows.
pub async fn validate_remote_copies(
    node: &Arc<Node>,
    file: &File,
    remotes: Vec<RemoteInstance>,
    fresh: bool,
) -> Vec<FileValidationResponseItem> {
    let mut by_librarian: BTreeMap<String, Vec<RemoteInstance>> = BTreeMap::new();
    for remote in remotes {
        by_librarian
            .entry(remote.librarian_name.clone())
            .or_default()
            .push(remote);
    }
    let asks = by_librarian
        .into_iter()
        .map(|(librarian, held)| async move {
            match ask(node, &librarian, &file.name, fresh).await {
                Ok(rows) => rows,
                Err(reason) => {
                    tracing::warn!(%librarian, file = %file.name, %reason,
                    "a remote copy could not be validated");
                    held.iter()
                        .map(|remote| unreachable_row(file, remote, &reason))
                        .collect()
                }
            }
        });
    join_all(asks).await.into_iter().flatten().collect()
}

/// One librarian's rows for its own copies, or why it could not give them.
async fn ask(
    node: &Node,
    librarian: &str,
    file_name: &str,
    fresh: bool,
) -> Result<Vec<FileValidationResponseItem>, String> {
    let client = client_for(node, librarian).map_err(|e| e.to_string())?;
    let request = FileValidationRequest {
        file_name: file_name.to_string(),
        fresh,
        local_only: true,
    };
    let asked = async {
        client.ping().await?;
        client.validate_file(&request).await
    };
    match tokio::time::timeout(REMOTE_VALIDATION_TIMEOUT, asked).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            REMOTE_VALIDATION_TIMEOUT.as_secs()
        )),
    }
}

fn unreachable_row(
    file: &File,
    remote: &RemoteInstance,
    reason: &str,
) -> FileValidationResponseItem {
    FileValidationResponseItem {
        librarian: remote.librarian_name.clone(),
        store: remote.store_id,
        instance_id: remote.id,
        original_checksum: file.checksum.to_string(),
        original_size: file.size,
        current_checksum: String::new(),
        current_size: 0,
        computed_same_checksum: false,
        store_name: None,
        cached: None,
        computed_time: None,
        unreachable: Some(reason.to_string()),
    }
}
