//! `LibrarianClient`: one method per route, JSON in and out, errors decoded from the
//! protocol's failure bodies.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PeerError;
use crate::protocol::admin::{StoreListItem, StoreStateChangeRequest, StoreStateChangeResponse};
use crate::protocol::errors::{ErrorSearchRequest, ErrorSearchResponse};
use crate::protocol::ping::{PingRequest, PingResponse};
use crate::protocol::search::{FileSearchRequest, FileSearchResponse};
use crate::protocol::upload::{
    StreamBatchResponse, StreamStatus, UploadBatchCommitRequest, UploadBatchCommitResponse,
    UploadBatchPutManifest, UploadBatchPutResponse, UploadBatchStageRequest,
    UploadBatchStageResponse, UploadCompletionRequest, UploadInitiationRequest,
    UploadInitiationResponse, batch_put_body,
};
use crate::protocol::users::{
    PasswordChangeRequest, UserChangeResponse, UserCreationRequest, UserGetResponse,
    UserListResponse, UserUpdateRequest, UsernameRequest,
};
use crate::protocol::validate::{FileValidationRequest, FileValidationResponseItem};
use crate::protocol::{API_PREFIX, QUIRE_NODE_HEADER};

/// Where a librarian is and how to log in. `Debug` never shows the password.
#[derive(Clone)]
pub struct Connection {
    /// Base URL with scheme, host and port, e.g. `http://127.0.0.1:21108`.
    pub url: String,
    pub user: String,
    pub password: String,
    /// PEM certificates of authorities trusted for HTTPS beside the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A client of one librarian.
#[derive(Clone)]
pub struct LibrarianClient {
    connection: Connection,
    http: reqwest::Client,
}

impl LibrarianClient {
    /// A client for `connection`. Requests time out after `timeout` of silence.
    pub fn new(connection: Connection, timeout: Duration) -> Result<LibrarianClient, PeerError> {
        let unusable = |message: String| PeerError::Unreachable {
            url: connection.url.clone(),
            message,
        };
        let mut announce = reqwest::header::HeaderMap::new();
        announce.insert(
            QUIRE_NODE_HEADER,
            reqwest::header::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        );
        let mut builder = reqwest::Client::builder()
            .default_headers(announce)
            .read_timeout(timeout)
            .http2_adaptive_window(true)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64);
        if let Some(ca_file) = &connection.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| {
                unusable(format!(
                    "cannot read the CA file {}: {e}",
                    ca_file.display()
                ))
            })?;
            let authorities = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                unusable(format!("the CA file {} is not PEM: {e}", ca_file.display()))
            })?;
            builder = builder.tls_certs_merge(authorities);
        }
        let http = builder.build().map_err(|e| unusable(e.to_string()))?;
        Ok(LibrarianClient { connection, http })
    }

    /// The connection this client uses.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    fn url(&self, route: &str) -> String {
        format!(
            "{}{API_PREFIX}/{route}",
            self.connection.url.trim_end_matches('/')
        )
    }

    fn unreachable(&self, error: reqwest::Error) -> PeerError {
        PeerError::Unreachable {
            url: self.connection.url.clone(),
            message: error_chain(&error),
        }
    }

    /// POSTs `body` to `route` and decodes the answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        route: &str,
        body: &Req,
    ) -> Result<Resp, PeerError> {
        let response = self
            .http
            .post(self.url(route))
            .basic_auth(&self.connection.user, Some(&self.connection.password))
            .json(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.decode(route, response).await
    }

    async fn decode<Resp: DeserializeOwned>(
        &self,
        route: &str,
        response: reqwest::Response,
    ) -> Result<Resp, PeerError> {
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(refusal(route, status, &bytes));
        }
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| PeerError::Decode {
            route: route.to_string(),
            message: e.to_string(),
        })
    }

    /// `ping/`.
    pub async fn ping(&self) -> Result<PingResponse, PeerError> {
        self.post("ping/", &PingRequest::default()).await
    }

    /// Whether the librarian is a quire node (it names itself in the `Server` header).
    pub async fn is_quire(&self) -> Result<bool, PeerError> {
        let response = self
            .http
            .post(self.url("ping/"))
            .basic_auth(&self.connection.user, Some(&self.connection.password))
            .json(&PingRequest::default())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let server = response.headers().get(reqwest::header::SERVER).cloned();
        let _: PingResponse = self.decode("ping/", response).await?;
        Ok(server.is_some_and(|s| s.as_bytes().starts_with(b"quire/")))
    }

    /// `ping/logged`: succeeds only with valid credentials.
    pub async fn ping_logged(&self) -> Result<PingResponse, PeerError> {
        self.post("ping/logged", &PingRequest::default()).await
    }

    /// `ping/admin`: succeeds only for an administrator.
    pub async fn ping_admin(&self) -> Result<PingResponse, PeerError> {
        self.post("ping/admin", &PingRequest::default()).await
    }

    /// `upload/stage`.
    pub async fn stage(
        &self,
        request: &UploadInitiationRequest,
    ) -> Result<UploadInitiationResponse, PeerError> {
        self.post("upload/stage", request).await
    }

    /// `upload/batch_stage` (quire).
    pub async fn batch_stage(
        &self,
        request: &UploadBatchStageRequest,
    ) -> Result<UploadBatchStageResponse, PeerError> {
        self.post("upload/batch_stage", request).await
    }

    /// `upload/batch_commit` (quire).
    pub async fn batch_commit(
        &self,
        request: &UploadBatchCommitRequest,
    ) -> Result<UploadBatchCommitResponse, PeerError> {
        self.post("upload/batch_commit", request).await
    }

    /// `upload/batch_put` (quire): names, sends and commits many small files in
    /// one request; `contents` are their bytes, in manifest order.
    pub async fn batch_put(
        &self,
        manifest: &UploadBatchPutManifest,
        contents: &[&[u8]],
    ) -> Result<UploadBatchPutResponse, PeerError> {
        let route = "upload/batch_put";
        let response = self
            .http
            .put(self.url(route))
            .basic_auth(&self.connection.user, Some(&self.connection.password))
            .body(batch_put_body(manifest, contents))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.decode(route, response).await
    }

    /// `upload/commit`.
    pub async fn commit(&self, request: &UploadCompletionRequest) -> Result<(), PeerError> {
        let _: serde_json::Value = self.post("upload/commit", request).await?;
        Ok(())
    }

    /// How many bytes of a network upload are staged.
    pub async fn stream_status(
        &self,
        transfer_id: u64,
        path: Option<&str>,
    ) -> Result<StreamStatus, PeerError> {
        let route = format!("upload/stream/{transfer_id}");
        let mut request = self
            .http
            .get(self.url(&route))
            .basic_auth(&self.connection.user, Some(&self.connection.password));
        if let Some(path) = path {
            request = request.query(&[("path", path)]);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        self.decode(&route, response).await
    }

    /// Streams `body` into a network upload at `offset`.
    pub async fn stream_upload(
        &self,
        transfer_id: u64,
        path: Option<&str>,
        offset: u64,
        length: u64,
        body: reqwest::Body,
    ) -> Result<StreamStatus, PeerError> {
        let route = format!("upload/stream/{transfer_id}");
        let mut request = self
            .http
            .put(self.url(&route))
            .basic_auth(&self.connection.user, Some(&self.connection.password))
            .header(reqwest::header::CONTENT_LENGTH, length)
            .query(&[("offset", offset.to_string())])
            .body(body);
        if let Some(path) = path {
            request = request.query(&[("path", path)]);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        self.decode(&route, response).await
    }

    /// `upload/stream_batch` (quire): `body` is the framed manifest and bytes
    /// (`protocol::upload::stream_batch_head`, then every file's bytes).
    pub async fn stream_batch(&self, body: Vec<u8>) -> Result<StreamBatchResponse, PeerError> {
        let route = "upload/stream_batch";
        let response = self
            .http
            .put(self.url(route))
            .basic_auth(&self.connection.user, Some(&self.connection.password))
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.decode(route, response).await
    }

    /// `search/file`; "nothing found" is an empty list.
    pub async fn search_files(
        &self,
        request: &FileSearchRequest,
    ) -> Result<Vec<FileSearchResponse>, PeerError> {
        not_found_is_empty(self.post("search/file", request).await)
    }

    /// The record of exactly the file `name`, if there is one (a `search/file` by
    /// name, which may also match by pattern).
    pub async fn find_file(&self, name: &str) -> Result<Option<FileSearchResponse>, PeerError> {
        let found = self
            .search_files(&FileSearchRequest {
                name: Some(name.to_string()),
                create_time_window: None,
                uploader: None,
                source: None,
                max_results: 1,
            })
            .await?;
        Ok(found.into_iter().find(|file| file.name == name))
    }

    /// `search/error`; "nothing found" is an empty list.
    pub async fn search_errors(
        &self,
        request: &ErrorSearchRequest,
    ) -> Result<Vec<ErrorSearchResponse>, PeerError> {
        not_found_is_empty(self.post("search/error", request).await)
    }

    /// `validate/file` as the protocol asks it (an earlier hash may be reused).
    pub async fn validate(
        &self,
        file_name: &str,
    ) -> Result<Vec<FileValidationResponseItem>, PeerError> {
        self.validate_file(&FileValidationRequest {
            file_name: file_name.to_string(),
            fresh: false,
            local_only: false,
        })
        .await
    }

    /// `validate/file` with every option of the request.
    pub async fn validate_file(
        &self,
        request: &FileValidationRequest,
    ) -> Result<Vec<FileValidationResponseItem>, PeerError> {
        self.post("validate/file", request).await
    }

    /// `admin/stores/list`.
    pub async fn stores(&self) -> Result<Vec<StoreListItem>, PeerError> {
        self.post("admin/stores/list", &serde_json::json!({})).await
    }

    /// `admin/stores/state_change`.
    pub async fn set_store_enabled(
        &self,
        store_name: &str,
        enabled: bool,
    ) -> Result<StoreStateChangeResponse, PeerError> {
        let request = StoreStateChangeRequest {
            store_name: store_name.to_string(),
            enabled,
        };
        self.post("admin/stores/state_change", &request).await
    }

    /// `users/create`.
    pub async fn create_user(
        &self,
        request: &UserCreationRequest,
    ) -> Result<UserChangeResponse, PeerError> {
        self.post("users/create", request).await
    }

    /// `users/update`.
    pub async fn update_user(
        &self,
        request: &UserUpdateRequest,
    ) -> Result<UserChangeResponse, PeerError> {
        self.post("users/update", request).await
    }

    /// `users/delete`.
    pub async fn delete_user(&self, username: &str) -> Result<UserChangeResponse, PeerError> {
        let request = UsernameRequest {
            username: username.to_string(),
        };
        self.post("users/delete", &request).await
    }

    /// `users/get`.
    pub async fn get_user(&self, username: &str) -> Result<UserGetResponse, PeerError> {
        let request = UsernameRequest {
            username: username.to_string(),
        };
        self.post("users/get", &request).await
    }

    /// `users/list` (quire).
    pub async fn list_users(&self) -> Result<UserListResponse, PeerError> {
        self.post("users/list", &serde_json::json!({})).await
    }

    /// `users/password_update`: changes the caller's own password.
    pub async fn change_own_password(
        &self,
        current: &str,
        new: &str,
    ) -> Result<UserChangeResponse, PeerError> {
        let request = PasswordChangeRequest {
            password: current.to_string(),
            new_password: new.to_string(),
        };
        self.post("users/password_update", &request).await
    }
}

/// Turns a search's 404 into an empty result.
fn not_found_is_empty<T>(result: Result<Vec<T>, PeerError>) -> Result<Vec<T>, PeerError> {
    match result {
        Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(Vec::new()),
        other => other,
    }
}

/// Decodes a failure body: `{reason, suggested_remedy}`, `{detail: "..."}` (plain or a
/// JSON document in a string), or a 422 `{detail: [...]}`.
fn refusal(route: &str, status: StatusCode, body: &[u8]) -> PeerError {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let mut reason = text(&value["reason"]);
    let mut remedy = text(&value["suggested_remedy"]);
    match &value["detail"] {
        serde_json::Value::String(detail) => {
            let inner: serde_json::Value = serde_json::from_str(detail).unwrap_or_default();
            reason = reason.or(text(&inner["reason"])).or(Some(detail.clone()));
            remedy = remedy.or(text(&inner["suggested_remedy"]));
        }
        serde_json::Value::Array(items) => {
            let described: Vec<String> = items
                .iter()
                .map(|item| {
                    format!(
                        "{} at {}",
                        item["msg"].as_str().unwrap_or("invalid"),
                        item["loc"]
                    )
                })
                .collect();
            reason = reason.or(Some(described.join("; ")));
        }
        serde_json::Value::Object(inner) => {
            reason = reason.or(inner
                .get("reason")
                .and_then(|v| v.as_str())
                .map(str::to_string));
            remedy = remedy.or(inner
                .get("suggested_remedy")
                .and_then(|v| v.as_str())
                .map(str::to_string));
        }
        _ => {}
    }
    PeerError::Refused {
        route: route.to_string(),
        status,
        reason: reason.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string()),
        remedy: remedy.unwrap_or_default(),
    }
}

/// An error with its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_never_shows_its_password() {
        let connection = Connection {
            url: "http://b:21108".into(),
            user: "site-a".into(),
            password: "unsealed-Pa55".into(),
            ca_file: None,
        };
        let client = LibrarianClient::new(connection.clone(), Duration::from_secs(1)).unwrap();
        for shown in [
            format!("{connection:?}"),
            format!("{:#?}", client.connection()),
        ] {
            assert!(shown.contains("site-a"), "{shown}");
            assert!(!shown.contains("unsealed-Pa55"), "{shown}");
        }
    }
}
