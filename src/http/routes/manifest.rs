//! `admin/stores/manifest` (ADMIN): the manifest of a store, for a SneakerNet drive.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::clones::{self, CloneError, ManifestOptions};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::manifest::{StoreManifestRequest, StoreManifestResponse};

/// `admin/stores/manifest`. Outgoing transfers are created only with
/// `create_outgoing_transfers`, and then `destination_librarian` must be a known
/// peer.
pub async fn store_manifest(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<StoreManifestRequest>,
) -> ApiResult<Json<StoreManifestResponse>> {
    caller.require(AuthLevel::Admin)?;
    let options = ManifestOptions {
        store_name: request.store_name,
        outgoing_to: request
            .create_outgoing_transfers
            .then_some(request.destination_librarian),
        disable_store: request.disable_store,
        mark_unavailable: request.mark_local_instances_as_unavailable,
    };
    let manifest = clones::build_manifest(&node, options)
        .await
        .map_err(|error| match error {
            CloneError::UnknownStore(name) => ApiError::bad_request(
                format!("Store {name} does not exist."),
                "Check the name with `quire stores list`.",
            ),
            CloneError::UnknownLibrarian(name) => ApiError::bad_request(
                format!("Librarian {name} does not exist."),
                "Add the librarian first (admin/librarians/add), or leave out \
                 create_outgoing_transfers.",
            ),
            CloneError::Db(error) => ApiError::from(error),
            other => ApiError::internal("manifest failed", other),
        })?;
    tracing::info!(
        store = %manifest.store_name,
        files = manifest.store_files.len(),
        by = %caller.username,
        "manifest written"
    );
    Ok(Json(manifest))
}
