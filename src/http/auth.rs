//! HTTP Basic authentication, the protocol's levels, and the limits on failed
//! logins.
//!
//! Every route has a level (see `router` in `http/mod.rs`); [`require_level`] runs
//! before the handler and before its body is read, so a caller without that level
//! gets its 401 (or 429) before any 422 could describe the route's fields.
//!
//! A request without an `Authorization` header is refused outright. Otherwise the
//! credentials are checked against the short-lived cache, and on a miss against the
//! account's argon2 hash, or for an unknown account against a dummy hash of the
//! same cost, so the answer's timing does not tell whether the account exists.
//! Each verification is first charged to the client address and to the (account,
//! address) pair (`accounts::LoginThrottle`); an exhausted budget is a 429 with
//! `Retry-After`, and a right password costs nothing. Wrong credentials make the
//! caller level NONE; routes above NONE then answer 401 with the protocol's generic
//! detail. A caller whose credentials are right but whose level is too low also
//! gets a 401 (the protocol's status), with a detail naming both levels.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::error::ApiError;
use crate::accounts::Throttled;
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

/// Why a request was refused before its handler ran.
#[derive(Debug)]
pub enum AuthRejection {
    /// 401 (or a 500 of the database).
    Api(ApiError),
    /// 429: too many failed logins.
    Throttled(Throttled),
}

impl From<ApiError> for AuthRejection {
    fn from(error: ApiError) -> AuthRejection {
        AuthRejection::Api(error)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Api(error) => error.into_response(),
            AuthRejection::Throttled(throttled) => {
                let seconds = throttled.retry_after().as_secs_f64().ceil().max(1.0) as u64;
                let reason = match throttled {
                    Throttled::Address { .. } => format!(
                        "Too many failed logins from your address; no password is checked \
                         from it for {seconds} s."
                    ),
                    Throttled::Account { .. } => format!(
                        "Too many failed logins for this account from your address; its \
                         password is not checked from here for {seconds} s."
                    ),
                };
                let mut response = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    reason,
                    "Wait for the time in the Retry-After header, then log in with the \
                     right password (an administrator can reset it with users/update).",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }
}

impl FromRequestParts<Arc<Node>> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        node: &Arc<Node>,
    ) -> Result<Self, Self::Rejection> {
        // Put there by `require_level`, which ran first.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        identify(parts, node).await
    }
}

/// Route layer: authenticates the caller and refuses it unless it has `level`,
/// before anything reads the request's body. The handler's [`Caller`] is the one
/// found here.
pub async fn require_level(
    State((node, level)): State<(Arc<Node>, AuthLevel)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let caller = match identify(&parts, &node).await {
        Ok(caller) => caller,
        Err(rejection) => return rejection.into_response(),
    };
    if let Err(refusal) = caller.require(level) {
        return refusal.into_response();
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

/// The caller of a request, from its `Authorization` header.
async fn identify(parts: &Parts, node: &Arc<Node>) -> Result<Caller, AuthRejection> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::NotAuthenticated)?;
    let (username, password) = decode_basic(header.as_bytes()).ok_or(ApiError::NotAuthenticated)?;
    let verified = authenticate(node, &username, &password, client_address(parts)).await?;
    Ok(Caller {
        username,
        level: verified.unwrap_or(AuthLevel::None),
        authenticated: verified.is_some(),
    })
}

/// The address the connection came from (the peer of the TCP connection; headers
/// such as X-Forwarded-For are not trusted).
fn client_address(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| {
            info.0.ip().to_canonical()
        })
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
/// account or a wrong password, which callers must not tell apart), or a refusal
/// when `address` has used up its failed logins.
pub async fn authenticate(
    node: &Arc<Node>,
    username: &str,
    password: &str,
    address: IpAddr,
) -> Result<Option<AuthLevel>, AuthRejection> {
    let credentials = &node.credentials;
    if let Some(level) = credentials.lookup(username, password) {
        return Ok(Some(level));
    }
    // Identical parallel requests verify once; the others then hit the cache.
    let _gate = credentials.verification_gate(username, password).await;
    if let Some(level) = credentials.lookup(username, password) {
        return Ok(Some(level));
    }
    let last_token = credentials
        .throttle
        .begin(username, address)
        .map_err(AuthRejection::Throttled)?;
    let generation = credentials.generation(username);
    let user = node
        .db
        .read(|tx| users::get_user(tx, username))
        .map_err(ApiError::from)?;
    let hash = user.as_ref().map(|user| user.password_hash.as_str());
    let matches = credentials
        .verifier
        .verify(password, hash)
        .await
        .map_err(ApiError::from)?;
    let Some(user) = user.filter(|_| matches) else {
        if last_token {
            tracing::warn!(
                %address,
                username = ?username,
                "failed logins used up their budget; further attempts get 429 for a while"
            );
        }
        return Ok(None);
    };
    credentials.throttle.succeeded(username, address);
    credentials.remember(username, password, user.level, generation);
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
