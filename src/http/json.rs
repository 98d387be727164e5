//! Request bodies: JSON decoded into a route's request type, with the protocol's 422
//! answer (`{"detail": [{"type", "loc", "msg", "input"}]}`) for anything that does not
//! match the schema, malformed JSON included.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::body_timeout::is_stalled;
use super::error::ApiError;

/// Largest JSON body accepted (uploads travel separately).
const MAX_JSON_BYTES: usize = 16 << 20;

/// A JSON request body of type `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_JSON_BYTES)
            .await
            .map_err(|e| unreadable(&e))?;
        let _ = state;
        parse(&bytes).map(Body)
    }
}

/// The answer to a body that could not be read whole.
fn unreadable(error: &axum::Error) -> ApiError {
    use axum::http::StatusCode;
    if is_stalled(error) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body incomplete: {error}"),
            "Send the whole body promptly, with a Content-Length that matches it.",
        );
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body unreadable or over {MAX_JSON_BYTES} bytes: {error}"),
        "Send a smaller request.",
    )
}

/// Decodes a body, describing the first problem the way the protocol does. The
/// body is parsed once; only a body that fails is parsed again, to describe it.
pub fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes.as_ref()
    };
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => match deserializer.end() {
            Ok(()) => Ok(value),
            Err(trailing) => Err(json_invalid(&trailing)),
        },
        Err(error) => Err(describe(text, error)),
    }
}

/// The 422 answer for text that is not JSON.
fn json_invalid(syntax: &serde_json::Error) -> ApiError {
    ApiError::Validation(vec![json!({
        "type": "json_invalid",
        "loc": ["body", syntax.column()],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": syntax.to_string()},
    })])
}

/// The 422 answer for a body that did not decode.
fn describe(text: &[u8], error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let input: Value = match serde_json::from_slice(text) {
        Ok(value) => value,
        Err(syntax) => return json_invalid(&syntax),
    };
    let mut loc: Vec<Value> = vec![json!("body")];
    let path = error.path().to_string();
    if path != "." {
        loc.extend(path.split('.').map(|segment| {
            segment
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(segment.trim_matches(['[', ']'])))
        }));
    }
    let message = error.inner().to_string();
    let (kind, msg, offending) = classify(&message, &input, &mut loc);
    ApiError::Validation(vec![json!({
        "type": kind,
        "loc": loc,
        "msg": msg,
        "input": offending,
    })])
}

/// Turns a serde message into a pydantic-style error type and message.
fn classify(message: &str, input: &Value, loc: &mut Vec<Value>) -> (&'static str, String, Value) {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        loc.push(Value::from(field));
        return ("missing", "Field required".into(), input.clone());
    }
    let offending = loc
        .iter()
        .skip(1)
        .try_fold(input, |value, key| match key {
            Value::String(k) => value.get(k),
            Value::Number(n) => value.get(n.as_u64().unwrap_or(0) as usize),
            _ => None,
        })
        .cloned()
        .unwrap_or(Value::Null);
    let kind = if message.starts_with("invalid type") {
        "type_error"
    } else {
        "value_error"
    };
    (kind, message.to_string(), offending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Probe {
        size: i64,
        name: String,
    }

    fn detail(body: &str) -> Value {
        match parse::<Probe>(&Bytes::from(body.to_string())) {
            Err(ApiError::Validation(items)) => items[0].clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_json_invalid() {
        assert_eq!(detail("{not json")["type"], "json_invalid");
    }

    #[test]
    fn missing_field_names_it() {
        let item = detail(r#"{"size": 1}"#);
        assert_eq!(item["type"], "missing");
        assert_eq!(item["loc"], json!(["body", "name"]));
    }

    #[test]
    fn wrong_type_points_at_the_field() {
        let item = detail(r#"{"size": "big", "name": "x"}"#);
        assert_eq!(item["loc"], json!(["body", "size"]));
        assert_eq!(item["input"], json!("big"));
    }
}
