//! HTTP Basic authentication and the protocol's levels.
//!
//! A request without an `Authorization` header is refused outright. Otherwise the
//! credentials are checked against the short-lived cache, and on a miss against the
//! account's argon2 hash (on a blocking thread, one verification per account at a
//! time so a burst of parallel first requests pays for argon2 once). Wrong
//! credentials make the caller level NONE; routes above NONE then answer 401 with the
//! protocol's generic detail, so a stranger learns nothing about which accounts
//! exist. A caller whose credentials are right but whose level is too low also gets
//! a 401 (the protocol's status), with a detail naming both levels.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;

use super::error::ApiError;
use crate::accounts::verify_password;
use crate::db::repo::users;
use crate::model::AuthLevel;
use crate::node::Node;

/// The authenticated (or not) caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub level: AuthLevel,
    /// Whether the credentials were right (the account exists and the password
    /// matched); only then may a refusal say anything about the account.
    pub authenticated: bool,
}

impl Caller {
    /// Refuses the request unless the caller has at least `level`.
    pub fn require(&self, level: AuthLevel) -> Result<&Caller, ApiError> {
        if self.level >= level {
            Ok(self)
        } else if self.authenticated {
            Err(ApiError::LevelTooLow {
                username: self.username.clone(),
                has: self.level,
                needs: level,
            })
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

impl FromRequestParts<Arc<Node>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        node: &Arc<Node>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::NotAuthenticated)?;
        let (username, password) =
            decode_basic(header.as_bytes()).ok_or(ApiError::NotAuthenticated)?;
        let verified = authenticate(node, &username, &password).await?;
        Ok(Caller {
            username,
            level: verified.unwrap_or(AuthLevel::None),
            authenticated: verified.is_some(),
        })
    }
}

/// Splits a `Basic` header into username and password.
fn decode_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_string(), password.to_string()))
}

/// The level these credentials grant, or `None` when they are wrong (an unknown
/// account or a wrong password, which callers must not tell apart).
pub async fn authenticate(
    node: &Arc<Node>,
    username: &str,
    password: &str,
) -> Result<Option<AuthLevel>, ApiError> {
    if let Some(level) = node.credentials.lookup(username, password) {
        return Ok(Some(level));
    }
    let _one_at_a_time = node.credentials.verification_gate(username).lock().await;
    if let Some(level) = node.credentials.lookup(username, password) {
        return Ok(Some(level));
    }
    let generation = node.credentials.generation(username);
    let Some(user) = node.db.read(|tx| users::get_user(tx, username))? else {
        return Ok(None);
    };
    let given = password.to_string();
    let hash = user.password_hash.clone();
    let matches = tokio::task::spawn_blocking(move || verify_password(&given, &hash)).await?;
    if !matches {
        return Ok(None);
    }
    node.credentials
        .remember(username, password, user.level, generation);
    Ok(Some(user.level))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(level: AuthLevel, authenticated: bool) -> Caller {
        Caller {
            username: "bob".into(),
            level,
            authenticated,
        }
    }

    #[test]
    fn a_known_account_below_the_route_level_is_told_both_levels() {
        let refused = caller(AuthLevel::ReadOnly, true)
            .require(AuthLevel::ReadAppend)
            .unwrap_err();
        assert!(
            matches!(
                &refused,
                ApiError::LevelTooLow { username, has: AuthLevel::ReadOnly, needs: AuthLevel::ReadAppend }
                    if username == "bob"
            ),
            "{refused:?}"
        );
        let wrong = caller(AuthLevel::None, false)
            .require(AuthLevel::ReadOnly)
            .unwrap_err();
        assert!(matches!(wrong, ApiError::Unauthorized), "{wrong:?}");
        assert!(
            caller(AuthLevel::Admin, true)
                .require(AuthLevel::Admin)
                .is_ok()
        );
    }

    #[test]
    fn decodes_basic_headers() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ann:pa:ss")
        );
        assert_eq!(
            decode_basic(header.as_bytes()),
            Some(("ann".into(), "pa:ss".into()))
        );
        assert_eq!(decode_basic(b"Bearer abc"), None);
        assert_eq!(decode_basic(b"Basic !!!"), None);
    }
}
