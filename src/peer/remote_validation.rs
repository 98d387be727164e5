//! The remote half of `validate/file`: every librarian that holds a remote
//! instance of the file is asked, all at once, to validate its own copies.
//!
//! Invariant: each remote instance is accounted for. A librarian that answers
//! contributes its own rows, judged against this node's record; one that answers
//! with no row, or cannot be asked (unknown, unusable
//! credentials, down, slower than [`REMOTE_VALIDATION_TIMEOUT`]) contributes one
//! row per remote instance it holds, marked `unreachable` with the reason, so a
//! copy that was not checked never looks like one that was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::registry::client_for;
use crate::model::{Checksum, File, RemoteInstance};
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
                Ok(rows) => rows
                    .into_iter()
                    .map(|row| judged_here(file, &librarian, row))
                    .collect::<Vec<_>>(),
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
        Ok(Ok(rows)) if rows.is_empty() => Err("it reported no copy".into()),
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no answer within {} s",
            REMOTE_VALIDATION_TIMEOUT.as_secs()
        )),
    }
}

/// A peer's row as this node reports it: named after the librarian that was
/// asked (not what the row claims), never marked unreachable by the peer, and
/// matched against this node's record of the file wherever the algorithms agree
/// (the peer compared with its own record, which may differ).
fn judged_here(
    file: &File,
    librarian: &str,
    mut row: FileValidationResponseItem,
) -> FileValidationResponseItem {
    row.librarian = librarian.to_string();
    row.unreachable = None;
    row.original_checksum = file.checksum.to_string();
    row.original_size = file.size;
    if let Ok(current) = Checksum::parse(&row.current_checksum)
        && current.algorithm == file.checksum.algorithm
    {
        row.computed_same_checksum = current == file.checksum && row.current_size == file.size;
    }
    row
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Algorithm, Timestamp};

    #[test]
    fn a_peer_row_is_named_after_the_peer_and_judged_against_our_record() {
        let ours = crate::checksum::hash_bytes(Algorithm::Md5, b"ours");
        let theirs = crate::checksum::hash_bytes(Algorithm::Md5, b"theirs");
        let file = File {
            name: "f".into(),
            create_time: Timestamp::now(),
            size: 4,
            checksum: ours.clone(),
            uploader: "u".into(),
            source: "s".into(),
        };
        let claimed = |current: &Checksum| FileValidationResponseItem {
            librarian: "someone-else".into(),
            store: 1,
            instance_id: 2,
            original_checksum: theirs.to_string(),
            original_size: 6,
            current_checksum: current.to_string(),
            current_size: 4,
            computed_same_checksum: true,
            store_name: None,
            cached: None,
            computed_time: None,
            unreachable: Some("made up".into()),
        };
        let row = judged_here(&file, "site-b", claimed(&theirs));
        assert_eq!(row.librarian, "site-b");
        assert_eq!(row.unreachable, None);
        assert_eq!(row.original_checksum, ours.to_string());
        assert!(
            !row.computed_same_checksum,
            "the peer's own record does not decide"
        );
        assert!(judged_here(&file, "site-b", claimed(&ours)).computed_same_checksum);
    }
}
