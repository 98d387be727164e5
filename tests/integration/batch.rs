//! The batch upload routes (quire additions): `upload/batch_stage`,
//! `upload/batch_commit` and `upload/batch_stream`.

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

/// The framed body of `upload/batch_stream`.
fn frames(items: &[(u64, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (id, bytes) in items {
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        body.extend_from_slice(bytes);
    }
    body
}

fn batch_stream(node: &TestNode, body: Vec<u8>, auth: (&str, &str)) -> (u16, Value) {
    let request = node
        .client()
        .put(node.url("upload/batch_stream"))
        .query(&[("deletion_policy", "allowed")])
        .body(body);
    let reply = node.send(request, Some(auth));
    (reply.status, reply.json)
}

fn transfer_id(item: &Value) -> u64 {
    item["transfer_id"]
        .as_u64()
        .expect("a staged item has a transfer id")
}

fn search(node: &TestNode, name: &str) -> (u16, Value) {
    node.post_admin("search/file", json!({ "name": name }))
}

#[test]
fn a_batch_body_commits_every_item_into_the_store() {
    let node = TestNode::start();
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            (
                format!("run/d{}/f{i}", i % 3),
                format!("bytes of {i}").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let staged = batch_stage(&node, &refs);
    let items = staged["uploads"].as_array().unwrap();
    assert_eq!(items.len(), 40);
    assert!(items.iter().all(|i| i["error"].is_null()), "{staged}");
    let body: Vec<(u64, &[u8])> = items
        .iter()
        .zip(&refs)
        .map(|(item, (_, bytes))| (transfer_id(item), *bytes))
        .collect();
    let (status, reply) = batch_stream(&node, frames(&body), node.admin());
    assert_eq!(status, 200, "{reply}");
    let commits = reply["commits"].as_array().unwrap();
    assert!(commits.iter().all(|c| c["error"].is_null()), "{reply}");
    for (name, bytes) in &files {
        let (status, found) = search(&node, name);
        assert_eq!(status, 200, "{name}: {found}");
        assert_eq!(found[0]["checksum"], md5(bytes));
        assert_eq!(found[0]["instances"][0]["deletion_policy"], 1);
        let path = found[0]["instances"][0]["path"].as_str().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), *bytes);
    }
    let staging = node.store_root().join(".quire-staging");
    assert_eq!(
        std::fs::read_dir(staging).unwrap().count(),
        0,
        "staging is left empty"
    );
}

#[test]
fn a_wrong_item_is_refused_alone_and_leaves_nothing_behind() {
    let node = TestNode::start();
    let staged = batch_stage(&node, &[("good", b"good bytes"), ("bad", b"bad bytes")]);
    let items = staged["uploads"].as_array().unwrap();
    let body = frames(&[
        (transfer_id(&items[0]), b"good bytes"),
        (transfer_id(&items[1]), b"BAD bytes"),
        (999_999, b"unknown transfer"),
    ]);
    let (status, reply) = batch_stream(&node, body, node.admin());
    assert_eq!(status, 200, "{reply}");
    let commits = reply["commits"].as_array().unwrap();
    assert!(commits[0]["error"].is_null(), "{reply}");
    assert_eq!(commits[1]["error"]["status"], 406, "{reply}");
    assert_eq!(commits[2]["error"]["status"], 404, "{reply}");
    assert_eq!(search(&node, "good").0, 200);
    assert_eq!(search(&node, "bad").0, 404);
    assert!(
        !node.store_root().join("bad").exists(),
        "refused bytes never get a name"
    );
    // The refused transfer is failed for good: sending it again is refused.
    let again = frames(&[(transfer_id(&items[1]), b"bad bytes")]);
    let (_, reply) = batch_stream(&node, again, node.admin());
    assert_eq!(reply["commits"][0]["error"]["status"], 404, "{reply}");
}

#[test]
fn a_body_cut_short_commits_the_whole_items_and_the_rest_can_be_resent() {
    let node = TestNode::start();
    let staged = batch_stage(
        &node,
        &[("first", b"0123456789"), ("second", b"abcdefghij")],
    );
    let items = staged["uploads"].as_array().unwrap();
    let mut body = frames(&[
        (transfer_id(&items[0]), b"0123456789"),
        (transfer_id(&items[1]), b"abcdefghij"),
    ]);
    body.truncate(body.len() - 4);
    let (status, reply) = batch_stream(&node, body, node.admin());
    assert_eq!(status, 200, "{reply}");
    assert!(reply["commits"][0]["error"].is_null(), "{reply}");
    assert_eq!(reply["commits"][1]["error"]["status"], 500, "{reply}");
    assert_eq!(search(&node, "second").0, 404);
    let resent = frames(&[(transfer_id(&items[1]), b"abcdefghij")]);
    let (_, reply) = batch_stream(&node, resent, node.admin());
    assert!(reply["commits"][0]["error"].is_null(), "{reply}");
    assert_eq!(search(&node, "second").0, 200);
}

#[test]
fn another_account_cannot_send_the_bytes_of_a_transfer() {
    let node = TestNode::start();
    node.create_user("other", "other-pw", crate::support::READAPPEND);
    let staged = batch_stage(&node, &[("mine", b"mine")]);
    let body = frames(&[(transfer_id(&staged["uploads"][0]), b"mine")]);
    let (status, reply) = batch_stream(&node, body, ("other", "other-pw"));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["commits"][0]["error"]["status"], 401, "{reply}");
    assert_eq!(search(&node, "mine").0, 404);
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
