//! `ping/` (any credentials), `ping/logged` (READONLY) and `ping/admin` (ADMIN).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Redirect;

use crate::http::auth::Caller;
use crate::http::error::ApiResult;
use crate::model::AuthLevel;
use crate::node::Node;
use crate::protocol::ping::PingResponse;

fn answer(node: &Node) -> Json<PingResponse> {
    Json(PingResponse {
        name: node.config.name.clone(),
        description: node.config.description.clone(),
    })
}

/// `ping/`: needs credentials to be present, not to be right.
pub async fn ping(State(node): State<Arc<Node>>, _caller: Caller) -> Json<PingResponse> {
    answer(&node)
}

/// `ping/logged`: checks that the credentials are valid.
pub async fn logged(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> ApiResult<Json<PingResponse>> {
    caller.require(AuthLevel::ReadOnly)?;
    Ok(answer(&node))
}

/// `ping/admin`: checks that the credentials are an administrator's.
pub async fn admin(State(node): State<Arc<Node>>, caller: Caller) -> ApiResult<Json<PingResponse>> {
    caller.require(AuthLevel::Admin)?;
    Ok(answer(&node))
}

/// `/api/v2/ping` without the slash: 307 to the canonical route.
pub async fn redirect() -> Redirect {
    Redirect::temporary("/api/v2/ping/")
}
