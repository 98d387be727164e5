//! Links put where the node writes and reads: clients of the `local` provider
//! write in staging, local users may write in store directories. A stream (single
//! or batch), a commit (of a file or a directory) and a placement in a store
//! never follow them, anywhere on the path.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{
    batch_put, batch_put_body, copy_local, directory_checksum, md5, stage_body, staging_location,
    transfer_id,
};

/// A file outside every tree the node owns, holding `bytes`.
fn precious(node: &TestNode, bytes: &[u8]) -> PathBuf {
    let path = node.dir.path().join("precious.txt");
    fs::write(&path, bytes).unwrap();
    path
}

/// An empty directory outside every tree the node owns.
fn outside_dir(node: &TestNode) -> PathBuf {
    let path = node.dir.path().join("outside");
    fs::create_dir_all(&path).unwrap();
    path
}

/// Every entry under `dir`, relative to it.
fn entries(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// Stages `name` with `upload_name` as the staged entry's name (nested names
/// make directories inside the staging directory).
fn stage_nested(node: &TestNode, name: &str, upload_name: &str, size: usize, sum: &str) -> Value {
    let mut body = stage_body(name, size as i64, sum, "attacker");
    body["upload_name"] = json!(upload_name);
    let (status, staged) = node.post_admin("upload/stage", body);
    assert_eq!(status, 201, "{staged}");
    staged
}

/// Replaces the directory `path` (as staging made it) with a link to `target`.
fn swap_dir_for_link(path: &Path, target: &Path) {
    fs::remove_dir_all(path).unwrap();
    symlink(target, path).unwrap();
}

fn assert_refused_as_link(status: u16, text: &str) {
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("symbolic link"), "{text}");
}

#[test]
fn a_stream_never_writes_through_a_link_in_place_of_the_staged_file() {
    let node = TestNode::start();
    let target = precious(&node, b"precious bytes");
    let bytes = b"attacker's bytes";
    let staged = node.stage("streamed", bytes);
    symlink(&target, staging_location(&staged)).unwrap();
    let id = transfer_id(&staged);
    let put = node.put_stream(id, 0, None, bytes);
    assert_refused_as_link(put.status, &put.text);
    let status = node.stream_status(id, None);
    assert_refused_as_link(status.status, &status.text);
    assert_eq!(fs::read(&target).unwrap(), b"precious bytes");
}

#[test]
fn a_stream_into_a_directory_upload_never_goes_through_a_linked_directory() {
    let node = TestNode::start();
    let outside = outside_dir(&node);
    let sum = directory_checksum(Algorithm::Md5, &[b"x"]);
    let (status, staged) = node.post_admin("upload/stage", stage_body("tree", 1, &sum, "attacker"));
    assert_eq!(status, 201, "{staged}");
    fs::create_dir_all(staging_location(&staged)).unwrap();
    swap_dir_for_link(staging_location(&staged), &outside);
    let put = node.put_stream(transfer_id(&staged), 0, Some("x"), b"x");
    assert_refused_as_link(put.status, &put.text);
    assert!(entries(&outside).is_empty(), "{:?}", entries(&outside));
}

#[test]
fn a_batch_stream_never_writes_through_a_link_in_place_of_a_staged_item() {
    let node = TestNode::start();
    let target = precious(&node, b"precious bytes");
    let files: [(&str, &[u8]); 2] = [("b/one", b"first item"), ("b/two", b"second item")];
    let uploads: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| stage_body(name, bytes.len() as i64, &md5(bytes), "attacker"))
        .collect();
    let (status, staged) = node.post_admin("upload/batch_stage", json!({ "uploads": uploads }));
    assert_eq!(status, 201, "{staged}");
    let first = &staged["uploads"][0];
    symlink(&target, staging_location(first)).unwrap();
    let put = node.put_stream(transfer_id(first), 0, None, files[0].1);
    assert_refused_as_link(put.status, &put.text);
    assert_eq!(fs::read(&target).unwrap(), b"precious bytes");
    let second = &staged["uploads"][1];
    let put = node.put_stream(transfer_id(second), 0, None, files[1].1);
    assert_eq!(
        put.status, 200,
        "the other item streams as usual: {}",
        put.text
    );
}

#[test]
fn a_commit_never_takes_a_file_through_a_linked_staging_directory() {
    let node = TestNode::start();
    let outside = outside_dir(&node);
    let bytes = b"a file the client may read but not move";
    fs::write(outside.join("f"), bytes).unwrap();
    let staged = stage_nested(&node, "taken", "d/f", bytes.len(), &md5(bytes));
    swap_dir_for_link(staging_location(&staged).parent().unwrap(), &outside);
    let (status, body) = node.commit(&staged);
    assert_refused_as_link(status, &body.to_string());
    assert_eq!(fs::read(outside.join("f")).unwrap(), bytes, "left in place");
    assert_eq!(node.search_name("taken").0, 404, "nothing recorded");
    assert!(!node.store_root().join("taken").exists());
}

#[test]
fn a_commit_never_takes_a_directory_through_a_linked_staging_directory() {
    let node = TestNode::start();
    let outside = outside_dir(&node);
    fs::create_dir_all(outside.join("tree")).unwrap();
    fs::write(outside.join("tree/a"), b"foreign a").unwrap();
    let sum = directory_checksum(Algorithm::Md5, &[b"foreign a"]);
    let staged = stage_nested(&node, "taken-tree", "d/tree", 9, &sum);
    swap_dir_for_link(staging_location(&staged).parent().unwrap(), &outside);
    let (status, body) = node.commit(&staged);
    assert_refused_as_link(status, &body.to_string());
    assert_eq!(fs::read(outside.join("tree/a")).unwrap(), b"foreign a");
    assert_eq!(node.search_name("taken-tree").0, 404, "nothing recorded");
    assert!(!node.store_root().join("taken-tree").exists());
}

#[test]
fn a_link_planted_in_a_store_directory_redirects_no_upload() {
    let node = TestNode::start();
    let outside = outside_dir(&node);
    symlink(&outside, node.store_root().join("planted")).unwrap();

    let bytes = b"an upload under the planted name";
    let staged = node.stage("planted/x", bytes);
    copy_local(&staged, bytes);
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("planted/x"),
        "{body}"
    );

    let (status, reply) = batch_put(
        &node,
        batch_put_body("attacker", &[("planted/y", b"batched bytes")]),
        node.admin(),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["files"][0]["error"]["status"], 409, "{reply}");

    assert!(entries(&outside).is_empty(), "{:?}", entries(&outside));
    assert_eq!(node.search_name("planted/x").0, 404);
    assert_eq!(node.search_name("planted/y").0, 404);
    assert!(
        fs::symlink_metadata(node.store_root().join("planted"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays for the operator to look at"
    );
}
