//! `search/file` (READONLY), `search/instance_local` and `search/instance_remote`
//! (ADMIN). An empty result is a 404, which clients read as "nothing found".
//!
//! `search/file` reports a local copy available only if its record says so, its
//! store is here, and its path exists now (one `lstat` per copy): a copy whose
//! bytes are gone is never shown as available.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::db::repo::files::{self, FileQuery};
use crate::db::repo::instances::{self, InstanceQuery};
use crate::db::repo::librarians;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::integrity::{self, Verification};
use crate::model::{AuthLevel, DeletionPolicy, File, Instance, RemoteInstance, Timestamp};
use crate::node::Node;
use crate::protocol::search::{
    FileSearchRequest, FileSearchResponse, InstanceSearchRequest, InstanceSearchResponse,
    RemoteInstanceSearchRequest, RemoteInstanceSearchResponse,
};
use crate::store::Stores;

/// Clamps a requested result count to the node's limit.
pub fn clamp(node: &Node, requested: usize) -> usize {
    requested.min(node.config.max_search_results)
}

/// Reads an optional `[start, end]` window.
pub fn window(given: Option<Vec<Timestamp>>) -> ApiResult<Option<(Timestamp, Timestamp)>> {
    match given.as_deref() {
        None => Ok(None),
        Some([start, end]) => Ok(Some((*start, *end))),
        Some(other) => Err(ApiError::bad_request(
            format!("create_time_window has {} entries", other.len()),
            "Give exactly two date-times: [start, end].",
        )),
    }
}

/// The wire form of a local instance; a copy on a store in `away_stores` (an
/// unplugged drive) is reported unavailable.
pub fn instance_response(instance: Instance, away_stores: &[u64]) -> InstanceSearchResponse {
    InstanceSearchResponse {
        available: instance.available && !away_stores.contains(&instance.store_id),
        path: instance.path,
        deletion_policy: instance.deletion_policy,
        created_time: instance.created_time,
        id: Some(instance.id),
        file_name: Some(instance.file_name),
        store_id: Some(instance.store_id),
    }
}

fn remote_response(remote: RemoteInstance) -> RemoteInstanceSearchResponse {
    RemoteInstanceSearchResponse {
        librarian_name: remote.librarian_name,
        copy_time: remote.copy_time,
        id: Some(remote.id),
        file_name: Some(remote.file_name),
        store_id: Some(remote.store_id),
        sender: Some(remote.sender),
    }
}

/// `search/file`.
pub async fn file(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<FileSearchRequest>,
) -> ApiResult<Json<Vec<FileSearchResponse>>> {
    caller.require(AuthLevel::ReadOnly)?;
    let query = FileQuery {
        name: request.name,
        uploader: request.uploader,
        source: request.source,
        window: window(request.create_time_window)?,
        limit: clamp(&node, request.max_results),
    };
    let caller_name = caller.username.clone();
    let results = tokio::task::spawn_blocking(move || {
        let away = node.stores.away_ids();
        let mut missing = Vec::new();
        let results = node.db.read(|tx| {
            let mut results = Vec::new();
            for file in files::search(tx, &query)? {
                let local = instances::of_file(tx, &file.name)?;
                let remote = instances::remotes_of_file(tx, &file.name)?;
                let instances = local
                    .into_iter()
                    .map(|instance| {
                        let present = away.contains(&instance.store_id)
                            || copy_is_present(&node.stores, &file, &instance, &mut missing);
                        let mut answer = instance_response(instance, &away);
                        answer.available &= present;
                        answer
                    })
                    .collect();
                results.push(FileSearchResponse {
                    checksum: file.checksum.to_string(),
                    instances,
                    remote_instances: remote.into_iter().map(remote_response).collect(),
                    name: file.name,
                    create_time: file.create_time,
                    size: file.size,
                    uploader: file.uploader,
                    source: file.source,
                });
            }
            Ok(results)
        })?;
        if !missing.is_empty() {
            // The answer stands without the record; the next check records it.
            if let Err(error) = integrity::record_outcomes(&node.db, missing, &caller_name) {
                tracing::warn!(%error, "cannot record copies found missing by a search");
            }
        }
        Ok::<_, ApiError>(results)
    })
    .await??;
    if results.is_empty() {
        return Err(ApiError::not_found(
            "No files found.",
            "Check that you are searching for the correct file.",
        ));
    }
    Ok(Json(results))
}

/// Whether a local copy is on disk (an `lstat` from its store's root, symlink-free).
/// A copy that is gone (its path, or a directory above it, no longer there, or
/// replaced by a link, which is never followed) is added to `missing`, to be
/// recorded as the integrity checks record it: a corrupt-file record and, the
/// first time, an error.
fn copy_is_present(
    stores: &Stores,
    file: &File,
    instance: &Instance,
    missing: &mut Vec<(File, Verification)>,
) -> bool {
    let Some((store, relative)) = stores
        .by_id(instance.store_id)
        .and_then(|store| Some((store, store.relative_path(Path::new(&instance.path))?)))
    else {
        // Not a copy under a configured store root: nothing to look at.
        return true;
    };
    let error = match store.root_dir().and_then(|root| root.try_stat(relative)) {
        Ok(Some(_)) => return true,
        Ok(None) => std::io::Error::from(std::io::ErrorKind::NotFound),
        Err(error) => error,
    };
    let gone = error.kind() == std::io::ErrorKind::NotFound
        || error.raw_os_error() == Some(libc::ENOTDIR)
        || crate::fsroot::refusal(&error).is_some();
    if gone {
        let outcome = Verification {
            instance: instance.clone(),
            current: None,
            matches: false,
            cached: false,
            computed_time: Timestamp::now(),
            stat: None,
            problem: Some(error.to_string()),
        };
        missing.push((file.clone(), outcome));
    }
    false
}

/// Reads a deletion-policy filter given as a name or an integer.
fn deletion_policy_filter(value: Option<serde_json::Value>) -> ApiResult<Option<DeletionPolicy>> {
    let Some(value) = value else { return Ok(None) };
    let policy = match &value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Number(n) => n.as_i64().and_then(|n| DeletionPolicy::try_from(n).ok()),
        serde_json::Value::String(text) => match text.to_ascii_lowercase().as_str() {
            "allowed" | "1" => Some(DeletionPolicy::Allowed),
            "disallowed" | "0" => Some(DeletionPolicy::Disallowed),
            _ => None,
        },
        _ => None,
    };
    policy.map(Some).ok_or_else(|| {
        ApiError::bad_request(
            format!("{value} is not a deletion policy"),
            "Use \"allowed\", \"disallowed\", 1 or 0.",
        )
    })
}

/// `search/instance_local`.
pub async fn instance_local(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<InstanceSearchRequest>,
) -> ApiResult<Json<Vec<InstanceSearchResponse>>> {
    caller.require(AuthLevel::Admin)?;
    let query = InstanceQuery {
        id: request.id,
        path: request.path,
        deletion_policy: deletion_policy_filter(request.deletion_policy)?,
        created_time: request.created_time,
        file_name: request.file_name,
        store_id: request.store_id,
        available: request.available,
        away_stores: node.stores.away_ids(),
        limit: clamp(&node, request.max_results),
    };
    let away = query.away_stores.clone();
    let found =
        tokio::task::spawn_blocking(move || node.db.read(|tx| instances::search(tx, &query)))
            .await??;
    if found.is_empty() {
        return Err(ApiError::not_found(
            "No instances found.",
            "Check that you are searching for existing instances.",
        ));
    }
    Ok(Json(
        found
            .into_iter()
            .map(|i| instance_response(i, &away))
            .collect(),
    ))
}

/// `search/instance_remote`.
pub async fn instance_remote(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<RemoteInstanceSearchRequest>,
) -> ApiResult<Json<Vec<RemoteInstanceSearchResponse>>> {
    caller.require(AuthLevel::Admin)?;
    let limit = clamp(&node, request.max_results);
    let found = tokio::task::spawn_blocking(move || {
        node.db.read(|tx| {
            let librarian_name = match request.librarian_id {
                Some(id) => Some(
                    librarians::all_librarians(tx)?
                        .into_iter()
                        .find(|l| l.id == id)
                        .map(|l| l.name)
                        .unwrap_or_default(),
                ),
                None => None,
            };
            instances::search_remote(tx, limit, |r| {
                request.id.is_none_or(|id| id == r.id)
                    && request.file_name.as_ref().is_none_or(|f| *f == r.file_name)
                    && request.store_id.is_none_or(|s| s == r.store_id)
                    && librarian_name
                        .as_ref()
                        .is_none_or(|l| *l == r.librarian_name)
                    && request.copy_time.is_none_or(|t| t == r.copy_time)
                    && request.sender.as_ref().is_none_or(|s| *s == r.sender)
            })
        })
    })
    .await??;
    if found.is_empty() {
        return Err(ApiError::not_found(
            "No remote instances found.",
            "Check that you are searching for existing instances.",
        ));
    }
    Ok(Json(found.into_iter().map(remote_response).collect()))
}
