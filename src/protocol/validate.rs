//! `validate/file`.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// `validate/file` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileValidationRequest {
    pub file_name: String,
    /// quire addition: hash every copy now, never reusing an earlier hash. Absent
    /// (as the Librarian client sends it) means false: an earlier hash younger than
    /// `checksum_timeout` may stand for a copy that did not change since. Sent only
    /// when true, so a request to any librarian looks like the protocol's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// quire addition: answer for this librarian's own copies only, without
    /// asking the librarians that hold remote instances. A quire node sets it when
    /// it asks a peer, so that copies sent back and forth never make two nodes ask
    /// each other in a loop. Sent only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_only: bool,
}

/// One row per copy of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileValidationResponseItem {
    pub librarian: String,
    pub store: u64,
    pub instance_id: u64,
    pub original_checksum: String,
    pub original_size: u64,
    pub current_checksum: String,
    pub current_size: u64,
    pub computed_same_checksum: bool,
    /// quire addition: the name of `store`. Clients that do not know the field
    /// ignore it; `null` from quire only if the store left the configuration, and
    /// absent from other librarians.
    #[serde(default)]
    pub store_name: Option<String>,
    /// quire addition: whether this answer reused an earlier hash instead of
    /// hashing the copy now (absent from other librarians).
    #[serde(default)]
    pub cached: Option<bool>,
    /// quire addition: when the answer was computed (the start of the hash it
    /// reports, or when the copy was found missing).
    #[serde(default)]
    pub computed_time: Option<Timestamp>,
    /// quire addition: set on the row of a remote copy whose librarian could not
    /// be asked (why not); its current checksum is then empty and it counts as
    /// not verified. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_librarian_request_and_answer_still_decode() {
        let request: FileValidationRequest = serde_json::from_str(r#"{"file_name": "a"}"#).unwrap();
        assert!(!request.fresh);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"file_name": "a"}),
            "an ordinary request carries only the protocol's field"
        );
        let row: FileValidationResponseItem = serde_json::from_value(serde_json::json!({
            "librarian": "l", "store": 1, "instance_id": 2, "original_checksum": "md5:::00",
            "original_size": 1, "current_checksum": "md5:::00", "current_size": 1,
            "computed_same_checksum": true
        }))
        .unwrap();
        assert_eq!(
            (row.store_name, row.cached, row.computed_time),
            (None, None, None)
        );
    }
}
