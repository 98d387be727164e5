//! `corrupt/prepare` and `corrupt/resend` (CALLBACK): a peer asks this node to
//! re-send a file whose copy it found corrupt.
//!
//! quire does not repair peers' copies yet, so both routes answer 501 with the
//! protocol's `corrupt/*` failure shape (`{"detail": {"reason",
//! "suggested_remedy"}}`) and change nothing. They answer after the caller's
//! level was checked, like every route.

use axum::http::StatusCode;
use serde_json::json;

use crate::http::error::ApiError;

fn not_yet(route: &str) -> ApiError {
    ApiError::Detail {
        status: StatusCode::NOT_IMPLEMENTED,
        detail: json!({
            "reason": format!(
                "This node does not repair corrupt copies for its peers yet ({route})."
            ),
            "suggested_remedy": "Replace the corrupt copy by hand: delete that instance, \
                then clone the file again from a librarian whose copy validates.",
        }),
    }
}

/// `corrupt/prepare`: would get a file ready to be sent again.
pub async fn prepare() -> ApiError {
    not_yet("corrupt/prepare")
}

/// `corrupt/resend`: would send a file again.
pub async fn resend() -> ApiError {
    not_yet("corrupt/resend")
}
