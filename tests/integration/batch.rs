//! The batch upload routes (quire additions): `upload/batch_stage`,
//! `upload/batch_commit` and `upload/batch_put`.

use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{checksum, md5, stage_body};

/// Stages `files` (name, bytes) in one batch; returns the answer.
fn batch_stage(node: &TestNode, files: &[(&str, &[u8])]) -> Value {
    let uploads: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| stage_body(name, bytes.len() as i64, &md5(bytes), "batcher"))
        .collect();
    let (status, reply) = node.post_admin("upload/batch_stage", json!({ "uploads": uploads }));
    assert_eq!(status, 201, "{reply}");
    reply
}

/// The body of `upload/batch_put`: manifest length, manifest, then the bytes.
fn batch_put_body(manifest: &Value, contents: &[&[u8]]) -> Vec<u8> {
    let manifest = serde_json::to_vec(manifest).unwrap();
    let mut body = (manifest.len() as u64).to_le_bytes().to_vec();
    body.extend_from_slice(&manifest);
    for bytes in contents {
        body.extend_from_slice(bytes);
    }
    body
}

/// A manifest listing `files` (name, bytes) with their sizes and MD5s.
fn manifest(files: &[(&str, &[u8])]) -> Value {
    let files: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| json!({"name": name, "size": bytes.len(), "checksum": md5(bytes)}))
        .collect();
    json!({"uploader": "batcher", "deletion_policy": "allowed", "files": files})
}

fn batch_put(node: &TestNode, body: Vec<u8>, auth: (&str, &str)) -> (u16, Value) {
    let request = node.client().put(node.url("upload/batch_put")).body(body);
    let reply = node.send(request, Some(auth));
    (reply.status, reply.json)
}

/// Sends `files` and the bytes they declare; returns each file's error status
/// (`None` for stored).
fn put_files(node: &TestNode, files: &[(&str, &[u8])]) -> Vec<Option<u64>> {
    let contents: Vec<&[u8]> = files.iter().map(|(_, b)| *b).collect();
    let (status, reply) = batch_put(
        node,
        batch_put_body(&manifest(files), &contents),
        node.admin(),
    );
    assert_eq!(status, 200, "{reply}");
    let answers = reply["files"].as_array().expect("one answer per file");
    assert_eq!(answers.len(), files.len(), "{reply}");
    answers
        .iter()
        .zip(files)
        .map(|(answer, (name, _))| {
            assert_eq!(answer["name"], *name, "{reply}");
            answer["error"]["status"].as_u64()
        })
        .collect()
}

fn search(node: &TestNode, name: &str) -> (u16, Value) {
    node.post_admin("search/file", json!({ "name": name }))
}

/// Every file under the store root, staging excluded.
fn store_files(node: &TestNode) -> Vec<String> {
    let root = node.store_root();
    let mut found: Vec<String> = walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".quire-staging")
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_batch_put_stores_and_records_every_file() {
    let node = TestNode::start();
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            (
                format!("run/d{}/f{i}", i % 3),
                format!("bytes of {i}").into_bytes(),
            )
        })
        .chain([("run/empty".to_string(), Vec::new())])
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    assert!(put_files(&node, &refs).iter().all(Option::is_none));
    for (name, bytes) in &files {
        let (status, found) = search(&node, name);
        assert_eq!(status, 200, "{name}: {found}");
        assert_eq!(found[0]["checksum"], md5(bytes));
        assert_eq!(found[0]["uploader"], "batcher");
        assert_eq!(found[0]["instances"][0]["deletion_policy"], 1);
        let path = found[0]["instances"][0]["path"].as_str().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), *bytes);
    }
    assert_eq!(store_files(&node).len(), files.len());
    let staging = node.store_root().join(".quire-staging");
    assert_eq!(
        std::fs::read_dir(staging).unwrap().count(),
        0,
        "a batch upload uses no staging"
    );
}

#[test]
fn each_refused_file_is_answered_alone_and_leaves_nothing_behind() {
    let node = TestNode::start();
    node.upload("taken", b"x");
    let answers = put_files(
        &node,
        &[
            ("plain", b"plain bytes"),
            ("../escape", b"outside"),
            ("taken", b"x"),
            ("twice", b"first"),
            ("twice", b"second"),
            ("good", b"good bytes"),
        ],
    );
    assert_eq!(
        answers,
        vec![None, Some(400), Some(409), None, Some(409), None]
    );
    assert_eq!(store_files(&node), vec!["good", "plain", "taken", "twice"]);
    let (_, found) = search(&node, "twice");
    let path = found[0]["instances"][0]["path"].as_str().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"first");
    assert_eq!(search(&node, "good").0, 200);
    // A checksum that does not match the bytes: 406, and no name in the store.
    let mut body_manifest = manifest(&[("wrong", b"declared"), ("after", b"after")]);
    body_manifest["files"][0]["checksum"] = json!(md5(b"something else!"));
    let (status, reply) = batch_put(
        &node,
        batch_put_body(&body_manifest, &[b"declared", b"after"]),
        node.admin(),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["files"][0]["error"]["status"], 406, "{reply}");
    assert!(reply["files"][1]["error"].is_null(), "{reply}");
    assert_eq!(search(&node, "wrong").0, 404);
    assert!(!node.store_root().join("wrong").exists());
    assert_eq!(
        std::fs::read(node.store_root().join("after")).unwrap(),
        b"after",
        "the bytes after a refused file are the next file's"
    );
}

#[test]
fn a_body_cut_short_stores_the_whole_files_and_the_rest_can_be_resent() {
    let node = TestNode::start();
    let files: [(&str, &[u8]); 2] = [("first", b"0123456789"), ("second", b"abcdefghij")];
    let mut body = batch_put_body(&manifest(&files), &[files[0].1, files[1].1]);
    body.truncate(body.len() - 4);
    let (status, reply) = batch_put(&node, body, node.admin());
    assert_eq!(status, 200, "{reply}");
    assert!(reply["files"][0]["error"].is_null(), "{reply}");
    assert_eq!(reply["files"][1]["error"]["status"], 400, "{reply}");
    assert!(
        reply["files"][1]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("6 of the 10 bytes"),
        "{reply}"
    );
    assert_eq!(search(&node, "second").0, 404);
    assert_eq!(store_files(&node), vec!["first"]);
    assert_eq!(put_files(&node, &files), vec![Some(409), None]);
    assert_eq!(search(&node, "second").0, 200);
}

#[test]
fn a_body_longer_than_its_manifest_stores_nothing() {
    let node = TestNode::start();
    let files: [(&str, &[u8]); 1] = [("one", b"one")];
    let body = batch_put_body(&manifest(&files), &[b"one", b"and more"]);
    let (status, reply) = batch_put(&node, body, node.admin());
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("runs on past its manifest"),
        "{reply}"
    );
    assert_eq!(search(&node, "one").0, 404);
    assert!(store_files(&node).is_empty());
}

#[test]
fn a_broken_manifest_is_refused_with_a_reason() {
    let node = TestNode::start();
    let not_json = b"{not json".to_vec();
    let mut body = (not_json.len() as u64).to_le_bytes().to_vec();
    body.extend_from_slice(&not_json);
    assert_eq!(batch_put(&node, body, node.admin()).0, 422);
    let wrong_shape = batch_put_body(&json!({"files": [{"name": "x"}]}), &[]);
    assert_eq!(batch_put(&node, wrong_shape, node.admin()).0, 422);
    let (status, reply) = batch_put(&node, vec![1, 2, 3], node.admin());
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["suggested_remedy"]
            .as_str()
            .unwrap()
            .contains("manifest")
    );
    let (status, _) = batch_put(&node, u64::MAX.to_le_bytes().to_vec(), node.admin());
    assert_eq!(status, 413);
    assert!(store_files(&node).is_empty());
}

#[test]
fn batch_put_needs_an_account_that_may_upload() {
    let node = TestNode::start();
    node.create_user("reader", "reader-pw", crate::support::READONLY);
    let files: [(&str, &[u8]); 1] = [("mine", b"mine")];
    let body = || batch_put_body(&manifest(&files), &[b"mine"]);
    assert_eq!(batch_put(&node, body(), ("reader", "reader-pw")).0, 401);
    assert_eq!(batch_put(&node, body(), ("admin", "wrong")).0, 401);
    assert_eq!(search(&node, "mine").0, 404);
}

/// How long the node may take to finish what a test started (debug build).
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits (polling, with a deadline) until `done` holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting until {what}"
        );
        // Short: some conditions last only a few milliseconds.
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
}

/// A request sent on a connection of its own, whose answer is never read.
pub struct Unanswered {
    socket: std::net::TcpStream,
}

impl Unanswered {
    /// Sends `method route` as admin with `body` (of `content_type`, if given).
    pub fn send(
        node: &TestNode,
        method: &str,
        route: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Unanswered {
        use base64::Engine;
        use std::io::Write;

        let url = node.url(route);
        let (address, path) = url.trim_start_matches("http://").split_once('/').unwrap();
        let (user, password) = node.admin();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let content_type = content_type
            .map(|t| format!("Content-Type: {t}\r\n"))
            .unwrap_or_default();
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        write!(
            socket,
            "{method} /{path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\n\
             {content_type}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        socket.write_all(body).unwrap();
        Unanswered { socket }
    }

    /// Hangs up without reading the answer.
    pub fn hang_up(self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// How many files uploaded as `uploader` are recorded.
pub fn recorded_by(node: &TestNode, uploader: &str) -> usize {
    let query = json!({"uploader": uploader, "max_results": 100_000});
    match node.post_admin("search/file", query) {
        (404, _) => 0,
        (200, found) => found.as_array().map_or(0, Vec::len),
        (status, found) => panic!("search/file: {status} {found}"),
    }
}

#[test]
fn a_caller_that_hangs_up_while_files_are_named_still_gets_every_file_recorded() {
    let node = TestNode::start();
    // Enough bytes that syncing them after the names appear takes a moment.
    let files: Vec<(String, Vec<u8>)> = (0..64)
        .map(|i| {
            let bytes = format!("bytes {i}\n").repeat(8 << 10).into_bytes();
            (format!("gone/d{}/f{i}", i % 8), bytes)
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let contents: Vec<&[u8]> = refs.iter().map(|(_, b)| *b).collect();
    let body = batch_put_body(&manifest(&refs), &contents);
    // The admin's password is verified (and cached) before.
    assert_eq!(search(&node, "gone/d0/f0").0, 404);
    let request = Unanswered::send(&node, "PUT", "upload/batch_put", None, &body);
    // Hang up once the node names files: from then on the batch must run to the
    // end, never leaving a named file unrecorded.
    wait_until("the node names the first file", || {
        !store_files(&node).is_empty()
    });
    request.hang_up();
    wait_until("every file is recorded after the hang-up", || {
        recorded_by(&node, "batcher") == files.len()
    });
    let in_store = store_files(&node);
    assert_eq!(
        in_store.len(),
        files.len(),
        "the store holds exactly the recorded files: {in_store:?}"
    );
    for (name, bytes) in &files {
        let stored = std::fs::read(node.store_root().join(name)).unwrap();
        assert!(stored == *bytes, "the bytes of {name}");
    }
    // Sending the batch again stores nothing new: every file is taken.
    let answers = put_files(&node, &refs);
    assert!(answers.iter().all(|a| *a == Some(409)), "{answers:?}");
    assert_eq!(store_files(&node).len(), files.len());
}

#[test]
fn batch_stage_refuses_taken_and_invalid_names_item_by_item() {
    let node = TestNode::start();
    node.upload("taken", b"x");
    let uploads = json!([
        stage_body("taken", 1, &md5(b"x"), "u"),
        stage_body("../escape", 1, &md5(b"x"), "u"),
        stage_body("fine", 1, &md5(b"y"), "u"),
    ]);
    let (status, reply) = node.post_admin("upload/batch_stage", json!({ "uploads": uploads }));
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["uploads"][0]["error"]["status"], 409, "{reply}");
    assert_eq!(reply["uploads"][1]["error"]["status"], 400, "{reply}");
    assert!(reply["uploads"][2]["error"].is_null(), "{reply}");
    assert!(
        reply["uploads"][2]["staging_location"]
            .as_str()
            .unwrap()
            .ends_with("-fine")
    );
}

#[test]
fn batch_commit_commits_locally_copied_items_and_refuses_wrong_ones() {
    let node = TestNode::start();
    let staged = batch_stage(&node, &[("a/one", b"one"), ("a/two", b"two")]);
    let items = staged["uploads"].as_array().unwrap();
    std::fs::write(items[0]["staging_location"].as_str().unwrap(), b"one").unwrap();
    std::fs::write(items[1]["staging_location"].as_str().unwrap(), b"TWO").unwrap();
    let commits: Vec<Value> = items
        .iter()
        .map(|item| {
            json!({
                "store_name": staged["store_name"],
                "staging_name": item["staging_name"],
                "staging_location": item["staging_location"],
                "upload_name": item["upload_name"],
                "destination_location": item["destination_location"],
                "transfer_provider_name": "local",
                "transfer_provider": {"hostnames": []},
                "meta_mode": "infer",
                "deletion_policy": "0",
                "uploader": "batcher",
                "transfer_id": item["transfer_id"],
            })
        })
        .collect();
    let (status, reply) = node.post_admin("upload/batch_commit", json!({ "commits": commits }));
    assert_eq!(status, 200, "{reply}");
    assert!(reply["commits"][0]["error"].is_null(), "{reply}");
    assert_eq!(reply["commits"][1]["error"]["status"], 406, "{reply}");
    assert_eq!(search(&node, "a/one").0, 200);
    assert_eq!(search(&node, "a/two").0, 404);
    let staging = node.store_root().join(".quire-staging");
    assert_eq!(
        std::fs::read_dir(staging).unwrap().count(),
        0,
        "staging is left empty"
    );
}

#[test]
fn the_cli_batch_mode_uploads_a_tree_and_skips_existing_files_on_a_rerun() {
    let node = TestNode::start();
    let source = tempfile::tempdir().unwrap();
    for i in 0..300 {
        let dir = source.path().join(format!("d{}", i % 4));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    std::fs::write(source.path().join("big"), vec![7u8; 300 << 10]).unwrap();
    let run = |provider: &str| {
        crate::node::quire_command()
            .args(["upload", "--batch", "--json", "--provider", provider])
            .arg(source.path())
            .arg("tree")
            .args(["--url", &node.url("").replace("/api/v2/", "")])
            .args(["--user", "admin", "--password", node.admin().1])
            .output()
            .unwrap()
    };
    let first = run("auto");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["uploaded"], 301, "{summary}");
    let again = run("local");
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["uploaded"], 0, "{summary}");
    assert_eq!(summary["already_existed"], 301, "{summary}");
    let (status, found) = search(&node, "tree/d3/f299");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found[0]["checksum"], checksum(Algorithm::Xxh3, b"file 299"));
}
