//! `validate/file` (READONLY): check every available local copy of a file against
//! the file's record. With the quire addition `fresh`, every copy is hashed now;
//! without it (the protocol's request), an earlier hash may stand under the cache
//! rule of `integrity` (younger than `checksum_timeout`, copy unchanged since).
//! Each row says whether it was cached and when it was computed. Librarians that
//! hold remote instances are asked meanwhile, in parallel, for their own rows
//! (`peer::remote_validation`), unless the quire addition `local_only` is set.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;

use crate::db::repo::{files, instances, librarians};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::integrity::{record_outcome, verify_instance};
use crate::model::AuthLevel;
use crate::node::Node;
use crate::peer::remote_validation::validate_remote_copies;
use crate::protocol::validate::{FileValidationRequest, FileValidationResponseItem};

/// `validate/file`. A copy that is missing or unreadable is reported with an empty
/// current checksum, size 0 and `computed_same_checksum: false`.
pub async fn file(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<FileValidationRequest>,
) -> ApiResult<Json<Vec<FileValidationResponseItem>>> {
    caller.require(AuthLevel::ReadOnly)?;
    let name = request.file_name;
    let trust_for = if request.fresh {
        Duration::ZERO
    } else {
        node.config.checksum_timeout
    };
    let (file, copies, remotes, asked_by_peer) = node.db.read(|tx| {
        Ok((
            files::get_file(tx, &name)?,
            instances::of_file(tx, &name)?,
            instances::remotes_of_file(tx, &name)?,
            librarians::get_librarian(tx, &caller.username)?.is_some(),
        ))
    })?;
    let Some(file) = file else {
        return Err(ApiError::bad_request(
            format!("The file '{name}' does not exist on this librarian."),
            "Check the file name and try again.",
        ));
    };
    // A peer asking is answered for local copies only, whatever it sends: a
    // Librarian peer never sends `local_only`, and copies sent back and forth
    // would otherwise make two nodes ask each other in a loop.
    let remote_rows = if request.local_only || asked_by_peer {
        None
    } else {
        let (node, file) = (node.clone(), file.clone());
        let fresh = request.fresh;
        Some(tokio::spawn(async move {
            validate_remote_copies(&node, &file, remotes, fresh).await
        }))
    };
    let caller_name = caller.username.clone();
    let mut rows = tokio::task::spawn_blocking(move || {
        // Copies on an unplugged drive are away, not corrupt: they are not hashed.
        let away = node.stores.away_ids();
        let mut rows = Vec::new();
        for instance in copies
            .iter()
            .filter(|i| i.available && !away.contains(&i.store_id))
        {
            let outcome = verify_instance(&node.stores, &file, instance, trust_for);
            record_outcome(&node.db, &file, &outcome, &caller_name)?;
            let (current_checksum, current_size) = outcome
                .current
                .map(|(checksum, size)| (checksum.to_string(), size))
                .unwrap_or_default();
            rows.push(FileValidationResponseItem {
                librarian: node.config.name.clone(),
                store: instance.store_id,
                instance_id: instance.id,
                original_checksum: file.checksum.to_string(),
                original_size: file.size,
                current_checksum,
                current_size,
                computed_same_checksum: outcome.matches,
                store_name: node.stores.by_id(instance.store_id).map(|s| s.name.clone()),
                cached: Some(outcome.cached),
                computed_time: Some(outcome.computed_time),
                unreachable: None,
            });
        }
        Ok::<_, ApiError>(rows)
    })
    .await??;
    if let Some(remote_rows) = remote_rows {
        rows.extend(remote_rows.await?);
    }
    Ok(Json(rows))
}
