//! `users/create`, `users/update`, `users/delete`, `users/get`, `users/password_update`.

use serde::{Deserialize, Serialize};

use crate::model::AuthLevel;

/// `users/create` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCreationRequest {
    pub username: String,
    pub password: String,
    pub permission: AuthLevel,
}

/// `users/update` request; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserUpdateRequest {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub permission: Option<AuthLevel>,
}

/// `users/delete` and `users/get` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsernameRequest {
    pub username: String,
}

/// `users/password_update` request (the caller's own password).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordChangeRequest {
    pub password: String,
    pub new_password: String,
}

/// Answer of the changing user routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserChangeResponse {
    pub success: bool,
    pub username: String,
}

/// `users/get` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserGetResponse {
    pub username: String,
    pub permission: AuthLevel,
}

/// quire addition, `users/list` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserListResponse {
    pub users: Vec<UserGetResponse>,
}
