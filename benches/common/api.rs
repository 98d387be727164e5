//! The node's HTTP API as the benchmarks use it: an admin client, and the untimed
//! check that a run's records are all there with the source's checksums.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use quire::model::{Checksum, Timestamp};
use serde_json::{Value, json};

use super::lean_http::LeanClient;
use super::node::Node;

/// Largest answer read (a search listing every file of a run).
const MAX_ANSWER_BYTES: u64 = 1 << 30;

/// A blocking client of one node, as its admin (one connection kept alive). ureq
/// runs each request on the calling thread, so a client costs little CPU beside
/// the node it measures.
pub struct Api {
    agent: ureq::Agent,
    host: String,
    base: String,
    authorization: String,
}

impl Api {
    /// A client of `node` that logs in as `admin` with the node's admin-password file.
    pub fn admin(node: &Node) -> Api {
        let read = |name: &str| {
            std::fs::read_to_string(node.data_dir().join(name))
                .unwrap_or_else(|e| panic!("cannot read the node's {name}: {e}"))
                .trim()
                .to_string()
        };
        let credentials = format!("admin:{}", read("admin-password"));
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .http_status_as_error(false)
            .build();
        let host = read("listen-address");
        Api {
            agent: config.into(),
            base: format!("http://{host}/api/v2"),
            host,
            authorization: format!("Basic {}", BASE64.encode(credentials)),
        }
    }

    /// A connection of its own with the same account, for benchmarks whose client
    /// must cost as little CPU as possible (see `lean_http`).
    pub fn lean(&self) -> LeanClient {
        LeanClient::connect(&self.host, "/api/v2/", &self.authorization)
    }

    /// POSTs `body` as JSON to `route` (e.g. `upload/stage`); returns the status and
    /// the decoded answer (`null` for an empty body). Panics if the node cannot be
    /// reached or answers something that is not JSON.
    pub fn post(&self, route: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let mut response = self
            .agent
            .post(format!("{}/{route}", self.base))
            .header("Authorization", &self.authorization)
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {route}: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .unwrap_or_else(|e| panic!("POST {route}: reading the answer: {e}"));
        if text.is_empty() {
            return (status, Value::Null);
        }
        let value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("POST {route} answered {status} with no JSON ({e}): {text}")
        });
        (status, value)
    }

    /// Every file record created in `[since, until]` (at most `limit`, which must
    /// not exceed the node's `max_search_results`).
    pub fn files_created_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: u64,
    ) -> Vec<Value> {
        let request = json!({
            "create_time_window": [since, until],
            "max_results": limit,
        });
        match self.post("search/file", &request) {
            (200, Value::Array(found)) => found,
            // The protocol answers "nothing found" with a 404.
            (404, _) => Vec::new(),
            (status, other) => panic!("search/file answered {status}: {other}"),
        }
    }
}

/// The records a timed run must have produced: `expected` names, all recorded between
/// `since` and `until`, no others in that window, and for each sampled name the
/// checksum of its source bytes.
pub struct ExpectedRecords {
    pub since: Timestamp,
    pub until: Timestamp,
    pub names: BTreeSet<String>,
    /// (recorded name, source file) pairs whose checksums are compared.
    pub samples: Vec<(String, PathBuf)>,
}

/// Checks (untimed) that the node recorded exactly the expected names in the run's
/// time window, and that each sampled record's checksum is that of its source, in
/// whichever algorithm the node recorded. Returns how many records it checked.
pub fn check_records(api: &Api, expected: &ExpectedRecords) -> usize {
    let wanted = expected.names.len() as u64;
    // One more than expected, so that an extra record shows up.
    let found = api.files_created_between(expected.since, expected.until, wanted + 1);
    let names: BTreeSet<String> = found
        .iter()
        .map(|f| f["name"].as_str().expect("a record has a name").to_string())
        .collect();
    assert_eq!(
        names.len(),
        found.len(),
        "search/file listed a record twice"
    );
    let missing: Vec<&String> = expected.names.difference(&names).take(5).collect();
    let extra: Vec<&String> = names.difference(&expected.names).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the node recorded {} files in the run's window, {wanted} expected; missing \
         (first 5): {missing:?}; unexpected (first 5): {extra:?}",
        names.len()
    );
    for (name, source) in &expected.samples {
        let record = found
            .iter()
            .find(|f| f["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no record of sampled {name}"));
        let recorded = record["checksum"]
            .as_str()
            .expect("a record has a checksum");
        let recorded = Checksum::parse(recorded)
            .unwrap_or_else(|e| panic!("{name}: recorded checksum {recorded:?}: {e}"));
        let bytes =
            std::fs::read(source).unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
        let computed = quire::checksum::hash_bytes(recorded.algorithm, &bytes);
        assert_eq!(
            recorded,
            computed,
            "{name}: the node recorded another checksum than that of {}",
            source.display()
        );
    }
    found.len()
}

/// Every `step`-th index of `0..count` (at least the first and the last), for
/// sampling checksums without reading everything.
pub fn sample_indexes(count: u64, samples: u64) -> Vec<u64> {
    if count == 0 {
        return Vec::new();
    }
    let step = (count / samples.max(1)).max(1);
    let mut indexes: Vec<u64> = (0..count).step_by(step as usize).collect();
    if indexes.last() != Some(&(count - 1)) {
        indexes.push(count - 1);
    }
    indexes
}

/// Now, as the node stamps records.
pub fn now() -> Timestamp {
    Timestamp::now()
}
