//! `checkin/update` and `checkin/status` (CALLBACK): peers move and inspect the
//! transfers they share with this node.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::clones::{self, Requester};
use crate::http::auth::Caller;
use crate::http::error::ApiResult;
use crate::http::json::Body;
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::checkin::{
    CheckinStatusRequest, CheckinStatusResponse, CheckinUpdateRequest, CheckinUpdateResponse,
};

fn requester(caller: &Caller) -> Requester<'_> {
    Requester {
        username: &caller.username,
        admin: caller.level >= AuthLevel::Admin,
    }
}

/// `checkin/update`: moves each named transfer to `new_status` where allowed; the
/// answer says which changed and why the others did not.
pub async fn update(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CheckinUpdateRequest>,
) -> ApiResult<Json<CheckinUpdateResponse>> {
    caller.require(AuthLevel::Callback)?;
    let response = clones::update_transfers(
        &node,
        requester(&caller),
        request.source_transfer_ids,
        request.destination_transfer_ids,
        request.new_status,
    )
    .await?;
    Ok(Json(response))
}

/// `checkin/status`: the status of each named transfer (`null` when unknown).
pub async fn status(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<CheckinStatusRequest>,
) -> ApiResult<Json<CheckinStatusResponse>> {
    caller.require(AuthLevel::Callback)?;
    let response = clones::status_of(
        &node,
        requester(&caller),
        &request.source_transfer_ids,
        &request.destination_transfer_ids,
    )?;
    Ok(Json(response))
}
