//! `users/*`: account administration (ADMIN), and `users/password_update` for the
//! caller's own password (READONLY).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::accounts::{hash_password, verify_password};
use crate::db::repo::users;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::model::{AuthLevel, User};
use crate::node::Node;
use crate::protocol::users::{
    PasswordChangeRequest, UserChangeResponse, UserCreationRequest, UserGetResponse,
    UserListResponse, UserUpdateRequest, UsernameRequest,
};

fn changed(username: String) -> Json<UserChangeResponse> {
    Json(UserChangeResponse {
        success: true,
        username,
    })
}

fn unknown(username: &str) -> ApiError {
    ApiError::bad_request(
        format!("User {username} does not exist."),
        "Check the user name; `quire users list` shows every account.",
    )
}

fn last_admin(username: &str) -> ApiError {
    ApiError::bad_request(
        format!("{username} is the last administrator."),
        "Create another administrator first.",
    )
}

fn admin_count(tx: &impl crate::db::Reads) -> Result<usize, crate::db::DbError> {
    Ok(users::all_users(tx)?
        .into_iter()
        .filter(|u| u.level == AuthLevel::Admin)
        .count())
}

fn check_new_account(username: &str, password: &str) -> ApiResult<()> {
    if username.is_empty() || username.contains(':') || username.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            format!("'{username}' cannot be a user name."),
            "Use a non-empty name without ':' or control characters.",
        ));
    }
    if password.is_empty() {
        return Err(ApiError::bad_request(
            "The password is empty.",
            "Give the account a password.",
        ));
    }
    Ok(())
}

async fn hash(password: String) -> ApiResult<String> {
    Ok(tokio::task::spawn_blocking(move || hash_password(&password)).await?)
}

/// `users/create`: 201, or 400 if the account exists.
pub async fn create(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UserCreationRequest>,
) -> ApiResult<(StatusCode, Json<UserChangeResponse>)> {
    caller.require(AuthLevel::Admin)?;
    check_new_account(&request.username, &request.password)?;
    let user = User {
        username: request.username.clone(),
        password_hash: hash(request.password).await?,
        level: request.permission,
    };
    node.db
        .write(move |txn| {
            if users::get_user(txn, &user.username)?.is_some() {
                return Ok(Err(ApiError::bad_request(
                    format!("User {} already exists.", user.username),
                    "Choose another name, or update the existing account.",
                )));
            }
            users::put_user(txn, &user)?;
            Ok(Ok(()))
        })
        .await?;
    Ok((StatusCode::CREATED, changed(request.username)))
}

/// `users/update`: changes the password and/or level of an account.
pub async fn update(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UserUpdateRequest>,
) -> ApiResult<Json<UserChangeResponse>> {
    caller.require(AuthLevel::Admin)?;
    let new_hash = match request.password {
        Some(password) if password.is_empty() => {
            return Err(ApiError::bad_request(
                "The password is empty.",
                "Give a password.",
            ));
        }
        Some(password) => Some(hash(password).await?),
        None => None,
    };
    let (username, level) = (request.username.clone(), request.permission);
    node.db
        .write(move |txn| {
            let Some(mut user) = users::get_user(txn, &username)? else {
                return Ok(Err(unknown(&username)));
            };
            if let Some(hash) = new_hash {
                user.password_hash = hash;
            }
            if let Some(level) = level {
                if user.level == AuthLevel::Admin
                    && level != AuthLevel::Admin
                    && admin_count(txn)? == 1
                {
                    return Ok(Err(last_admin(&username)));
                }
                user.level = level;
            }
            users::put_user(txn, &user)?;
            Ok(Ok(()))
        })
        .await?;
    node.credentials.forget(&request.username);
    Ok(changed(request.username))
}

/// `users/delete`. The last administrator cannot be deleted.
pub async fn delete(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UsernameRequest>,
) -> ApiResult<Json<UserChangeResponse>> {
    caller.require(AuthLevel::Admin)?;
    let username = request.username.clone();
    node.db
        .write(move |txn| {
            let Some(user) = users::get_user(txn, &username)? else {
                return Ok(Err(unknown(&username)));
            };
            if user.level == AuthLevel::Admin && admin_count(txn)? == 1 {
                return Ok(Err(last_admin(&username)));
            }
            users::delete_user(txn, &username)?;
            Ok(Ok(()))
        })
        .await?;
    node.credentials.forget(&request.username);
    Ok(changed(request.username))
}

/// `users/get`.
pub async fn get(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<UsernameRequest>,
) -> ApiResult<Json<UserGetResponse>> {
    caller.require(AuthLevel::Admin)?;
    let user = node
        .db
        .read(|tx| users::get_user(tx, &request.username))?
        .ok_or_else(|| unknown(&request.username))?;
    Ok(Json(UserGetResponse {
        username: user.username,
        permission: user.level,
    }))
}

/// `users/list` (quire addition): every account and its level.
pub async fn list(
    State(node): State<Arc<Node>>,
    caller: Caller,
) -> ApiResult<Json<UserListResponse>> {
    caller.require(AuthLevel::Admin)?;
    let all = node.db.read(users::all_users)?;
    Ok(Json(UserListResponse {
        users: all
            .into_iter()
            .map(|u| UserGetResponse {
                username: u.username,
                permission: u.level,
            })
            .collect(),
    }))
}

/// `users/password_update`: the caller changes their own password, giving the
/// current one.
pub async fn password_update(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<PasswordChangeRequest>,
) -> ApiResult<Json<UserChangeResponse>> {
    caller.require(AuthLevel::ReadOnly)?;
    let username = caller.username.clone();
    let user = node
        .db
        .read(|tx| users::get_user(tx, &username))?
        .ok_or_else(|| unknown(&username))?;
    let (given, stored) = (request.password.clone(), user.password_hash.clone());
    if !tokio::task::spawn_blocking(move || verify_password(&given, &stored)).await? {
        return Err(ApiError::bad_request(
            "The current password is wrong.",
            "Give your current password as `password`.",
        ));
    }
    if request.new_password.is_empty() {
        return Err(ApiError::bad_request(
            "The new password is empty.",
            "Give a password.",
        ));
    }
    let new_hash = hash(request.new_password).await?;
    let name = username.clone();
    node.db
        .write(move |txn| {
            let Some(mut user) = users::get_user(txn, &name)? else {
                return Ok(Err(unknown(&name)));
            };
            user.password_hash = new_hash;
            users::put_user(txn, &user)?;
            Ok(Ok(()))
        })
        .await?;
    node.credentials.forget(&username);
    Ok(changed(username))
}
