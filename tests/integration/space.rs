//! Room in a store: staged uploads are promised their declared size (released when
//! they complete or fail, and kept across a restart), a full filesystem is a 507
//! with a reason, and a name the filesystem cannot hold is refused at stage with
//! nothing created for it.
//!
//! The small stores are real tmpfs filesystems (`small_fs`), mounted where only
//! the node (and the test, through /proc) sees them.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::small_fs::SmallFs;
use crate::support::{batch_put, batch_put_body, commit_body, md5, stage_body, transfer_id};

const MIB: usize = 1 << 20;

/// A node whose only store is `<tmpfs>/store`.
fn node_on(small: &SmallFs) -> TestNode {
    let config = format!(
        "[[stores]]\nname = \"small\"\npath = \"{}\"\n",
        small.mount_point.join("store").display()
    );
    TestNode::start_wrapped(Some(&config), &[], small.wrapper())
}

fn bytes(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn stage(node: &TestNode, name: &str, content: &[u8]) -> (u16, Value) {
    let body = stage_body(name, content.len() as i64, &md5(content), "ann");
    node.post_admin("upload/stage", body)
}

/// Streams `content` to a staged upload and commits it; returns the commit's answer.
fn stream_and_commit(node: &TestNode, staged: &Value, content: &[u8]) -> (u16, Value) {
    let reply = node.put_stream(transfer_id(staged), 0, None, content);
    assert_eq!(reply.status, 200, "{}", reply.text);
    node.post_admin(
        "upload/commit",
        commit_body(staged, "quire_http", "0", "ann"),
    )
}

fn assert_refused_for_room(status: u16, body: &Value) {
    assert_eq!(status, 413, "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("promised to uploads in progress"), "{body}");
}

#[test]
fn three_uploads_staged_on_a_small_store_are_promised_their_room() {
    let small = SmallFs::mount("size=20m");
    let node = node_on(&small);
    let (a, b, c) = (bytes(8 * MIB, 1), bytes(8 * MIB, 2), bytes(8 * MIB, 3));
    let (status, staged_a) = stage(&node, "a", &a);
    assert_eq!(status, 201, "{staged_a}");
    let (status, staged_b) = stage(&node, "b", &b);
    assert_eq!(status, 201, "{staged_b}");
    let first = staged_a["available_bytes_on_store"].as_u64().unwrap();
    let second = staged_b["available_bytes_on_store"].as_u64().unwrap();
    assert_eq!(
        second,
        first - 8 * MIB as u64,
        "the second sees the first's room gone"
    );
    let (status, body) = stage(&node, "c", &c);
    assert_refused_for_room(status, &body);
    // The promised uploads go through whole.
    assert_eq!(stream_and_commit(&node, &staged_a, &a).0, 200);
    assert_eq!(stream_and_commit(&node, &staged_b, &b).0, 200);
    let (status, body) = stage(&node, "c", &c);
    assert_eq!(status, 413, "{body}");
    let small_one = bytes(2 * MIB, 4);
    let (status, staged) = stage(&node, "small", &small_one);
    assert_eq!(status, 201, "{staged}");
    assert_eq!(stream_and_commit(&node, &staged, &small_one).0, 200);
}

#[test]
fn a_restart_keeps_promises_and_a_failed_upload_releases_its_own() {
    let small = SmallFs::mount("size=20m");
    let mut node = node_on(&small);
    let (a, b, c) = (bytes(8 * MIB, 1), bytes(8 * MIB, 2), bytes(8 * MIB, 3));
    let (status, staged_a) = stage(&node, "a", &a);
    assert_eq!(status, 201, "{staged_a}");
    assert_eq!(stage(&node, "b", &b).0, 201);
    node.restart();
    let (status, body) = stage(&node, "c", &c);
    assert_refused_for_room(status, &body);
    // Wrong bytes: the commit fails the transfer, and its room is free again.
    let (status, body) = stream_and_commit(&node, &staged_a, &bytes(8 * MIB, 9));
    assert_eq!(status, 406, "{body}");
    let (status, body) = stage(&node, "c", &c);
    assert_eq!(status, 201, "{body}");
}

#[test]
fn bytes_already_staged_are_not_counted_twice() {
    let small = SmallFs::mount("size=20m");
    let node = node_on(&small);
    let big = bytes(12 * MIB, 1);
    let (status, staged) = stage(&node, "big", &big);
    assert_eq!(status, 201, "{staged}");
    let reply = node.put_stream(transfer_id(&staged), 0, None, &big);
    assert_eq!(reply.status, 200, "{}", reply.text);
    // 8 MiB are free, and the staged upload needs no more of them.
    let (status, body) = stage(&node, "more", &bytes(6 * MIB, 2));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_full_filesystem_is_a_507_with_a_reason() {
    let small = SmallFs::mount("size=20m");
    let node = node_on(&small);
    let content = bytes(8 * MIB, 1);
    let (status, staged) = stage(&node, "a", &content);
    assert_eq!(status, 201, "{staged}");
    // Something else fills the filesystem.
    small.fill_leaving(MIB as u64);
    let reply = node.put_stream(transfer_id(&staged), 0, None, &content);
    assert_eq!(reply.status, 507, "{}", reply.text);
    let reason = reply.json["reason"].as_str().unwrap();
    assert!(reason.contains("full"), "{}", reply.text);
    // (Not a bare "500": log timestamps carry such digits.)
    assert!(
        !node.log().contains("500 Internal Server Error"),
        "{}",
        node.log()
    );
}

#[test]
fn no_inode_left_is_a_507_at_stage_commit_and_batch_put_and_a_commit_leaves_no_directory() {
    let small = SmallFs::mount("size=20m,nr_inodes=400");
    let node = node_on(&small);
    let content = b"nested bytes".to_vec();
    let (status, staged) = stage(&node, "deep/er/name.dat", &content);
    assert_eq!(status, 201, "{staged}");
    let reply = node.put_stream(transfer_id(&staged), 0, None, &content);
    assert_eq!(reply.status, 200, "{}", reply.text);
    // One inode left: the commit makes `deep` and cannot make `deep/er`.
    small.use_up_inodes_but(1);
    let commit = commit_body(&staged, "quire_http", "0", "ann");
    let (status, body) = node.post_admin("upload/commit", commit.clone());
    assert_eq!(status, 507, "{body}");
    let store = small.outside(&small.mount_point.join("store"));
    assert!(!store.join("deep").exists(), "a directory was left behind");
    // No inode at all.
    small.use_up_inodes_but(0);
    let (status, body) = stage(&node, "another", b"another");
    assert_eq!(status, 507, "{body}");
    let files: [(&str, &[u8]); 1] = [("put.dat", b"put bytes")];
    let (status, reply) = batch_put(&node, batch_put_body("ann", &files), node.admin());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["files"][0]["error"]["status"], 507, "{reply}");
    // With room again, the same commit goes through: the transfer was kept.
    fs::remove_dir_all(small.outside(&small.mount_point.join("inodes"))).unwrap();
    let (status, body) = node.post_admin("upload/commit", commit);
    assert_eq!(status, 200, "{body}");
    assert_eq!(fs::read(store.join("deep/er/name.dat")).unwrap(), content);
}

/// Entries of a directory.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_name_too_long_for_the_store_is_refused_at_stage_with_nothing_left_behind() {
    let node = TestNode::start();
    let component = "c".repeat(255);
    // A valid name of 4,095 bytes: no room left for the store root in a path.
    let name = vec![component.as_str(); 16].join("/");
    assert_eq!(name.len(), 4095);
    let (status, body) = stage(&node, &name, b"long");
    assert_eq!(status, 400, "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("4095 bytes"), "{body}");
    let root = node.store_root();
    assert_eq!(entries(&root), vec![".quire-staging"]);
    assert!(entries(&root.join(".quire-staging")).is_empty());
    // In a batch, too, and the rest of the batch is staged.
    let uploads = json!({"uploads": [
        stage_body(&name, 4, &md5(b"long"), "ann"),
        stage_body("short", 5, &md5(b"short"), "ann"),
    ]});
    let (status, reply) = node.post_admin("upload/batch_stage", uploads);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["uploads"][0]["error"]["status"], 400, "{reply}");
    assert!(reply["uploads"][1]["error"].is_null(), "{reply}");
}

#[test]
fn a_batch_item_with_a_longest_base_name_is_staged_and_committed() {
    let node = TestNode::start();
    let name = format!("dir/{}", "b".repeat(255));
    let content = b"a long base name";
    let uploads = json!({"uploads": [stage_body(&name, 16, &md5(content), "ann")]});
    let (status, reply) = node.post_admin("upload/batch_stage", uploads);
    assert_eq!(status, 201, "{reply}");
    let item = &reply["uploads"][0];
    assert!(item["error"].is_null(), "{reply}");
    let upload_name = item["upload_name"].as_str().unwrap();
    assert!(upload_name.len() <= 255, "{upload_name}");
    let id = item["transfer_id"].as_u64().unwrap();
    let stream = node.put_stream(id, 0, None, content);
    assert_eq!(stream.status, 200, "{}", stream.text);
    let commit = json!({"commits": [{
        "store_name": reply["store_name"],
        "staging_name": item["staging_name"],
        "staging_location": item["staging_location"],
        "upload_name": item["upload_name"],
        "destination_location": name,
        "transfer_provider_name": "quire_http",
        "transfer_provider": {"hostnames": []},
        "meta_mode": "infer",
        "deletion_policy": "0",
        "uploader": "ann",
        "null_obsid": false,
        "transfer_id": id,
    }]});
    let (status, reply) = node.post_admin("upload/batch_commit", commit);
    assert_eq!(status, 200, "{reply}");
    assert!(reply["commits"][0]["error"].is_null(), "{reply}");
    assert_eq!(fs::read(node.store_root().join(&name)).unwrap(), content);
}
