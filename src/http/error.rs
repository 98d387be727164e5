//! The one place that maps failures to HTTP statuses and the protocol's error bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::db::DbError;
use crate::model::AuthLevel;

/// Suggested remedy when there is nothing specific to say.
pub const TRY_LATER: &str = "Please try again later.";

/// An error answer of the API.
#[derive(Debug)]
pub enum ApiError {
    /// The usual failure body: `{"reason", "suggested_remedy"}`.
    Failed {
        status: StatusCode,
        reason: String,
        remedy: String,
    },
    /// A `{"detail": <value>}` body (authentication, clone staging, corruption routes).
    Detail { status: StatusCode, detail: Value },
    /// No `Authorization` header.
    NotAuthenticated,
    /// Wrong credentials (unknown account or wrong password: the answer does not
    /// say which), or a transfer that is not the caller's.
    Unauthorized,
    /// Right credentials, but the account's level is below the route's. Still a 401
    /// (the protocol's status), with a detail that names both levels.
    LevelTooLow {
        username: String,
        has: AuthLevel,
        needs: AuthLevel,
    },
    /// A body that does not match the route's schema (422).
    Validation(Vec<Value>),
}

impl ApiError {
    /// A failure with a reason and a remedy.
    pub fn new(
        status: StatusCode,
        reason: impl Into<String>,
        remedy: impl Into<String>,
    ) -> ApiError {
        ApiError::Failed {
            status,
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(reason: impl Into<String>, remedy: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, reason, remedy)
    }

    /// 404 Not Found.
    pub fn not_found(reason: impl Into<String>, remedy: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, reason, remedy)
    }

    /// 409 Conflict.
    pub fn conflict(reason: impl Into<String>, remedy: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, reason, remedy)
    }

    /// 500, for failures of the node itself; the details go to the log when the
    /// answer is sent (never when an error is only built: a success must log none).
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}: {error}"),
            "The node logged the failure; ask its operator to check the log.",
        )
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Failed { status, .. } | ApiError::Detail { status, .. } => *status,
            ApiError::NotAuthenticated | ApiError::Unauthorized | ApiError::LevelTooLow { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> ApiError {
        ApiError::internal("database failure", error)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> ApiError {
        ApiError::internal("worker task failed", error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (body, basic_challenge) = match self {
            ApiError::Failed { reason, remedy, .. } => {
                if status.is_server_error() {
                    tracing::error!(%status, "{reason}");
                }
                (json!({"reason": reason, "suggested_remedy": remedy}), false)
            }
            ApiError::Detail { detail, .. } => (json!({ "detail": detail }), false),
            ApiError::NotAuthenticated => (json!({"detail": "Not authenticated"}), true),
            ApiError::Unauthorized => (json!({"detail": "Incorrect username or password"}), true),
            ApiError::LevelTooLow {
                username,
                has,
                needs,
            } => (
                json!({"detail": format!(
                    "The account '{username}' has level {}; this route needs {}. Ask an \
                     administrator of this node for an account with that level.",
                    has.name(),
                    needs.name()
                )}),
                true,
            ),
            ApiError::Validation(items) => (json!({ "detail": items }), false),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if basic_challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::ingest::IngestError> for ApiError {
    fn from(error: crate::ingest::IngestError) -> ApiError {
        use crate::ingest::IngestError as E;
        use StatusCode as S;
        let reason = error.to_string();
        let (status, remedy) = match &error {
            E::InvalidName(_) => (
                S::BAD_REQUEST,
                "Use a relative path in normal form, without '..' or a leading '/'.",
            ),
            E::NegativeSize(_) => (
                S::BAD_REQUEST,
                "Check you are trying to upload a valid file.",
            ),
            E::InvalidChecksum(_) => (
                S::BAD_REQUEST,
                "Send the checksum as <alg>:::<hex> with alg md5, xxh3, sha1, sha256, sha512 or blake3.",
            ),
            E::TooLarge { .. } | E::NoStore { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "Try again later, or upload a smaller file; the node's administrator can add room.",
            ),
            E::Oversized { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "Send exactly the number of bytes declared at staging.",
            ),
            E::NameTaken(_) => (
                S::CONFLICT,
                "Names are never reused: choose a name that does not exist yet.",
            ),
            E::InsideStoredFile { .. } => (
                S::CONFLICT,
                "Nothing is ever stored inside a stored file: choose a name outside it.",
            ),
            E::HoldsStoredFile { .. } => (
                S::CONFLICT,
                "A name that is the directory of stored files cannot name a file: choose \
                 another name.",
            ),
            E::NameBusy { .. } => (
                S::CONFLICT,
                "Try again in a moment; once the other file is stored, this name is refused \
                 if it lies inside that file or holds it.",
            ),
            E::OccupiedOnDisk { .. } => (
                S::CONFLICT,
                "Choose another name, or ask the node's operator to look at that path.",
            ),
            E::NameTooLong(_) => (
                S::BAD_REQUEST,
                "Use a shorter name: fewer or shorter directories.",
            ),
            E::NoSpace { .. } => (
                S::INSUFFICIENT_STORAGE,
                "Nothing was stored. Try again later, or upload to a node with room; the \
                 node's administrator can add room.",
            ),
            E::TransferNotFound(_) => {
                (S::NOT_FOUND, "Stage the upload again to get a transfer id.")
            }
            E::NotYourTransfer(_) => return ApiError::Unauthorized,
            E::TransferClosed { .. } | E::StagedDataMissing(_) => (
                S::NOT_FOUND,
                "Stage the upload again and copy the data before committing.",
            ),
            E::WrongTransferDetails { .. } => (
                S::BAD_REQUEST,
                "Commit with the values upload/stage returned.",
            ),
            E::NotPlain(_) => (
                S::BAD_REQUEST,
                "Stage regular files and directories only: symbolic links, FIFOs, devices \
                 and files with several names are never followed, read or written. Stage \
                 the upload again.",
            ),
            E::Mismatch { .. } => (
                S::NOT_ACCEPTABLE,
                "The data changed or was damaged in transit; stage and upload it again.",
            ),
            E::StoreDisabled(_) => (
                S::NOT_ACCEPTABLE,
                "Stage the upload again; a store that is enabled will be chosen.",
            ),
            E::BodyEnded { .. } => (
                S::BAD_REQUEST,
                "Send the whole body again; files already stored are answered 409.",
            ),
            E::BodyTooLong { .. } => (
                S::BAD_REQUEST,
                "Send exactly the bytes the manifest declares, in its order.",
            ),
            E::BadOffset { .. } => (
                S::RANGE_NOT_SATISFIABLE,
                "Ask for the staged length first and resume from there.",
            ),
            E::StreamSuperseded => (
                S::CONFLICT,
                "Only the newest stream of a file is written; ask for the staged length and resume from there.",
            ),
            E::Io { .. } | E::Db(_) | E::Task(_) => {
                return ApiError::internal("ingest failed", error);
            }
        };
        ApiError::new(status, reason, remedy)
    }
}
