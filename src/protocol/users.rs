//! `users/create`, `users/update`, `users/delete`, `users/get`, `users/password_update`.

use serde::{Deserialize, Serialize};

use crate::model::AuthLevel;

/// `users/create` request. `Debug` never shows the password.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserCreationRequest {
    pub username: String,
    pub password: String,
    pub permission: AuthLevel,
}

/// `users/update` request; absent fields stay as they are. `Debug` never shows the
/// password.
#[derive(Clone, Serialize, Deserialize)]
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

/// `users/password_update` request (the caller's own password). `Debug` never shows
/// either password.
#[derive(Clone, Serialize, Deserialize)]
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

impl std::fmt::Debug for UserCreationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCreationRequest")
            .field("username", &self.username)
            .field("permission", &self.permission)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UserUpdateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpdateRequest")
            .field("username", &self.username)
            .field("new_password", &self.password.is_some())
            .field("permission", &self.permission)
            .finish()
    }
}

impl std::fmt::Debug for PasswordChangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChangeRequest")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let shown = [
            format!(
                "{:?}",
                UserCreationRequest {
                    username: "carol".into(),
                    password: "pw-one-1".into(),
                    permission: AuthLevel::ReadOnly,
                }
            ),
            format!(
                "{:#?}",
                UserUpdateRequest {
                    username: "carol".into(),
                    password: Some("pw-two-2".into()),
                    permission: None,
                }
            ),
            format!(
                "{:?}",
                PasswordChangeRequest {
                    password: "pw-three-3".into(),
                    new_password: "pw-four-4".into(),
                }
            ),
        ]
        .concat();
        assert!(shown.contains("carol"), "{shown}");
        for password in ["pw-one-1", "pw-two-2", "pw-three-3", "pw-four-4"] {
            assert!(!shown.contains(password), "{shown}");
        }
    }
}
