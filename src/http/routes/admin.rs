//! `admin/stores/list`, `admin/stores/state_change`, `admin/add_file`,
//! `admin/instance/delete_local` and `admin/instance/delete_remote` (ADMIN).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::checksum::digest_in;
use crate::db::repo::files::Obstacle;
use crate::db::repo::{files, instances, next_id, stores};
use crate::fsroot::Dir;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::ingest::IngestError;
use crate::model::{AuthLevel, Checksum, DeletionPolicy, File, Instance, StoreState, Timestamp};
use crate::node::Node;
use crate::protocol::admin::{
    AddFileRequest, AddFileResponse, DeleteInstanceRequest, DeleteInstanceResponse, StoreListItem,
    StoreStateChangeRequest, StoreStateChangeResponse,
};
use crate::store::durable::remove_in;

fn unknown_store(name: &str) -> ApiError {
    ApiError::bad_request(
        format!("Store {name} does not exist."),
        "Check the name with `quire stores list`; stores are declared in the configuration.",
    )
}

/// `admin/stores/list`.
pub async fn store_list(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> ApiResult<Json<Vec<StoreListItem>>> {
    caller.require(AuthLevel::Admin)?;
    let items = node
        .stores
        .all()
        .iter()
        .map(|store| {
            let available = store.available();
            StoreListItem {
                name: store.name.clone(),
                store_type: "local".into(),
                free_space: if available {
                    store.space().map(|s| s.free).unwrap_or(0)
                } else {
                    0
                },
                ingestable: store.ingestable,
                available,
                enabled: store.enabled(),
            }
        })
        .collect();
    Ok(Json(items))
}

/// `admin/stores/state_change`: enables or disables a store (persisted).
pub async fn store_state_change(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<StoreStateChangeRequest>,
) -> ApiResult<Json<StoreStateChangeResponse>> {
    caller.require(AuthLevel::Admin)?;
    let store = node
        .stores
        .by_name(&request.store_name)
        .cloned()
        .ok_or_else(|| unknown_store(&request.store_name))?;
    let state = StoreState {
        id: store.id,
        name: store.name.clone(),
        enabled: request.enabled,
    };
    node.db
        .write(move |txn| {
            stores::put_store(txn, &state)?;
            Ok(Ok::<_, ApiError>(()))
        })
        .await?;
    store.set_enabled(request.enabled);
    tracing::info!(store = %store.name, enabled = request.enabled, by = %caller.username, "store state changed");
    Ok(Json(StoreStateChangeResponse {
        store_name: store.name.clone(),
        enabled: request.enabled,
        success: true,
    }))
}

/// `admin/add_file`: registers data already at `<store root>/<name>`, after
/// checking its size and checksum.
pub async fn add_file(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<AddFileRequest>,
) -> ApiResult<Json<AddFileResponse>> {
    caller.require(AuthLevel::Admin)?;
    let store = node
        .stores
        .by_name(&request.store_name)
        .cloned()
        .ok_or_else(|| unknown_store(&request.store_name))?;
    crate::model::validate_file_name(&request.name)
        .map_err(|e| ApiError::bad_request(e.to_string(), "Use a relative name in normal form."))?;
    let checksum = Checksum::parse(&request.checksum)
        .map_err(|e| ApiError::bad_request(e.to_string(), "Send the checksum as <alg>:::<hex>."))?;
    // Claimed while checked and recorded: nothing nested is placed meanwhile.
    let (claim, answers) = node.claims.claim(&[&request.name], "an upload");
    if let Some(Err(busy)) = answers.into_iter().next() {
        return Err(IngestError::NameBusy {
            name: request.name.clone(),
            other: busy.other,
            by: busy.by,
        }
        .into());
    }
    match node.db.read(|tx| files::obstacle(tx, &request.name))? {
        None => {}
        Some(Obstacle::Same) => {
            return Ok(Json(AddFileResponse {
                already_exists: true,
                file_exists: true,
                success: true,
            }));
        }
        Some(obstacle) => return Err(IngestError::obstacle(&request.name, obstacle).into()),
    }
    let expected = store.file_path(&request.name);
    let given = if Path::new(&request.path).is_absolute() {
        PathBuf::from(&request.path)
    } else {
        store.root.join(&request.path)
    };
    if given != expected {
        return Err(ApiError::bad_request(
            format!(
                "{} is not where store {} keeps {}",
                given.display(),
                store.name,
                request.name
            ),
            format!("Place the data at {} first.", expected.display()),
        ));
    }
    let algorithm = checksum.algorithm;
    let (root, name) = (store.root.clone(), PathBuf::from(&request.name));
    // Read from the store's root symlink-free: a link is never registered.
    let digests = tokio::task::spawn_blocking(move || {
        Dir::open_trusted(&root).and_then(|root| digest_in(&root, &name, &[algorithm]))
    })
    .await?
    .map_err(|e| {
        ApiError::bad_request(
            format!("File {} cannot be read: {e}", expected.display()),
            "Create the file first, or check its permissions.",
        )
    })?;
    let found = digests.get(algorithm).cloned().expect("computed");
    if found != checksum || digests.size != request.size {
        return Err(ApiError::bad_request(
            format!(
                "The data at {} is {} bytes with {found}, not {} bytes with {checksum}.",
                expected.display(),
                digests.size,
                request.size
            ),
            "Register the data with its real size and checksum.",
        ));
    }
    let file = File {
        name: request.name,
        create_time: request.create_time,
        size: request.size,
        checksum,
        uploader: request.uploader,
        source: request.source,
    };
    let now = Timestamp::now();
    let mut instance = Instance::verified_copy(
        &file.name,
        store.id,
        &expected,
        DeletionPolicy::Disallowed,
        digests.blake3(),
        now,
    );
    let created = node
        .db
        .write(move |txn| {
            match files::obstacle(txn, &file.name)? {
                Some(Obstacle::Same) => return Ok(Ok::<_, ApiError>(false)),
                Some(obstacle) => {
                    return Ok(Err(IngestError::obstacle(&file.name, obstacle).into()));
                }
                None => {}
            }
            files::insert(txn, &file)?;
            instance.id = next_id(txn, "instances")?;
            instances::put_instance(txn, &instance)?;
            Ok(Ok(true))
        })
        .await?;
    drop(claim);
    Ok(Json(AddFileResponse {
        already_exists: !created,
        file_exists: true,
        success: true,
    }))
}

/// `admin/instance/delete_local`: forgets a local instance; with `delete_file`,
/// also removes its bytes when no other local instance of the file remains. The
/// record goes first, so no record ever points at removed bytes.
pub async fn delete_local(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<DeleteInstanceRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<DeleteInstanceResponse>)> {
    caller.require(AuthLevel::Admin)?;
    let id = request.instance_id;
    let removed = node
        .db
        .write(move |txn| {
            let Some(instance) = instances::get_instance(txn, id)? else {
                return Ok(Ok::<_, ApiError>(None));
            };
            instances::delete_instance(txn, &instance)?;
            let others = instances::of_file(txn, &instance.file_name)?;
            Ok(Ok(Some((instance, others.is_empty()))))
        })
        .await?;
    let Some((instance, last_copy)) = removed else {
        return Ok(refused(id));
    };
    if request.delete_file.unwrap_or(false) && last_copy {
        // Removed from its store's root symlink-free; bytes outside every store
        // root are never removed.
        let located = node.stores.by_id(instance.store_id).and_then(|store| {
            let relative = store.relative_path(Path::new(&instance.path))?;
            Some((store.root.clone(), relative.to_path_buf()))
        });
        match located {
            Some((root, relative)) => tokio::task::spawn_blocking(move || {
                Dir::open_trusted(&root).and_then(|root| remove_in(&root, &relative))
            })
            .await?
            .map_err(|e| ApiError::internal("cannot remove the instance's bytes", e))?,
            None => tracing::warn!(instance = id, path = %instance.path,
                "the instance's bytes are not in a configured store; they were left alone"),
        }
    }
    tracing::info!(instance = id, file = %instance.file_name, by = %caller.username, "local instance deleted");
    Ok(done(id))
}

/// `admin/instance/delete_remote`: forgets that a peer holds a copy.
pub async fn delete_remote(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<DeleteInstanceRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<DeleteInstanceResponse>)> {
    caller.require(AuthLevel::Admin)?;
    let id = request.instance_id;
    let removed = node
        .db
        .write(move |txn| {
            let Some(remote) = instances::get_remote(txn, id)? else {
                return Ok(Ok::<_, ApiError>(false));
            };
            instances::delete_remote(txn, &remote)?;
            Ok(Ok(true))
        })
        .await?;
    Ok(if removed { done(id) } else { refused(id) })
}

fn done(id: u64) -> (axum::http::StatusCode, Json<DeleteInstanceResponse>) {
    (
        axum::http::StatusCode::OK,
        Json(DeleteInstanceResponse {
            success: true,
            instance_id: id,
        }),
    )
}

fn refused(id: u64) -> (axum::http::StatusCode, Json<DeleteInstanceResponse>) {
    (
        axum::http::StatusCode::BAD_REQUEST,
        Json(DeleteInstanceResponse {
            success: false,
            instance_id: id,
        }),
    )
}
