//! What survives a restart of the node (graceful, and after SIGKILL): files,
//! accounts, store states, and uploads still under way.

use std::fs;

use serde_json::json;

use crate::node::TestNode;
use crate::support::{READONLY, commit_body, copy_local, transfer_id};

#[test]
fn files_uploaded_before_a_restart_are_still_searchable() {
    let mut node = TestNode::start();
    node.upload("before/one", b"one");
    node.upload("before/two", b"two");
    node.restart();
    for (name, bytes) in [("before/one", b"one"), ("before/two", b"two")] {
        let file = node.file_record(name);
        assert_eq!(file["size"], 3);
        assert_eq!(fs::read(node.store_root().join(name)).unwrap(), bytes);
    }
    node.upload("after", b"after");
    let (status, found) = node.post_admin("search/file", json!({}));
    assert_eq!(status, 200, "{found}");
    assert_eq!(found.as_array().unwrap().len(), 3);
}

#[test]
fn files_committed_before_a_kill_are_still_searchable() {
    let mut node = TestNode::start();
    node.upload("durable", b"durable bytes");
    node.kill();
    node.start_again();
    let file = node.file_record("durable");
    assert_eq!(file["instances"][0]["available"], true);
    let (status, rows) = node.post_admin("validate/file", json!({"file_name": "durable"}));
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["computed_same_checksum"], true);
}

#[test]
fn accounts_and_store_states_survive_a_restart() {
    let mut node = TestNode::start();
    node.create_user("reader", "reader-pw", READONLY);
    let body = json!({"store_name": "main", "enabled": false});
    let (status, reply) = node.post_admin("admin/stores/state_change", body);
    assert_eq!(status, 200, "{reply}");
    node.restart();
    let (status, _) = node.post("ping/logged", json!({}), "reader", "reader-pw");
    assert_eq!(status, 200);
    let (status, stores) = node.post_admin("admin/stores/list", json!({}));
    assert_eq!(status, 200, "{stores}");
    assert_eq!(
        stores[0]["enabled"], false,
        "the disabled state is persisted"
    );
}

#[test]
fn a_staged_upload_can_be_committed_after_a_restart() {
    let mut node = TestNode::start();
    let staged = node.stage("across", b"across a restart");
    copy_local(&staged, b"across a restart");
    node.restart();
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "{body}");
    assert_eq!(node.file_record("across")["size"], 16);
}

#[test]
fn an_interrupted_stream_resumes_after_a_restart() {
    let mut node = TestNode::start();
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
    let staged = node.stage("resume-after-restart", &bytes);
    let id = transfer_id(&staged);
    assert_eq!(node.put_stream(id, 0, None, &bytes[..2000]).status, 200);
    node.restart();
    let status = node.stream_status(id, None);
    assert_eq!(status.json["staged_bytes"], 2000, "{}", status.text);
    let put = node.put_stream(id, 2000, None, &bytes[2000..]);
    assert_eq!(put.status, 200, "{}", put.text);
    let body = commit_body(&staged, "quire_http", "0", "test-uploader");
    let (code, reply) = node.post_admin("upload/commit", body);
    assert_eq!(code, 200, "{reply}");
    let stored = fs::read(node.store_root().join("resume-after-restart")).unwrap();
    assert_eq!(stored, bytes);
}

#[test]
fn staging_that_belongs_to_no_transfer_is_removed_at_start_up() {
    let mut node = TestNode::start();
    let staged = node.stage("live", b"live");
    let orphan = node.store_root().join(".quire-staging/not-a-transfer");
    fs::create_dir_all(&orphan).unwrap();
    fs::write(orphan.join("junk"), b"junk").unwrap();
    node.restart();
    assert!(!orphan.exists(), "orphaned staging is removed");
    let live = node
        .store_root()
        .join(".quire-staging")
        .join(staged["staging_name"].as_str().unwrap());
    assert!(live.is_dir(), "a live transfer keeps its staging");
}

#[test]
fn uploads_idle_longer_than_staging_expiry_are_failed_at_start_up() {
    let mut node = TestNode::with_config("staging_expiry = 0\n");
    let staged = node.stage("expired", b"expired");
    copy_local(&staged, b"expired");
    node.restart();
    let staging_dir = node
        .store_root()
        .join(".quire-staging")
        .join(staged["staging_name"].as_str().unwrap());
    assert!(!staging_dir.exists(), "the expired staging is removed");
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 404, "the transfer was failed: {body}");
    let staged = node.stage("expired", b"expired");
    copy_local(&staged, b"expired");
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "a fresh upload of the same name works: {body}");
}

#[test]
fn bytes_moved_into_the_store_by_an_unrecorded_commit_go_back_to_staging() {
    let mut node = TestNode::start();
    let staged = node.stage("half-committed", b"interrupted commit");
    copy_local(&staged, b"interrupted commit");
    // What a crash between the rename into the store and the database commit leaves.
    let in_store = node.store_root().join("half-committed");
    fs::rename(crate::support::staging_location(&staged), &in_store).unwrap();
    node.kill();
    node.start_again();
    assert!(
        !in_store.exists(),
        "unrecorded bytes do not stay in the store"
    );
    assert!(crate::support::staging_location(&staged).is_file());
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "the client's retried commit succeeds: {body}");
    assert_eq!(fs::read(&in_store).unwrap(), b"interrupted commit");
}
