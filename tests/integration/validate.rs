//! `validate/file` and `quire validate`: re-hash each local copy and compare it with
//! the file's record; when an earlier hash may stand in (never for a changed or
//! missing copy, never when asked for a fresh check), and how each row says so.

use std::fs;
use std::path::Path;
use std::process::Output;

use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{
    ALWAYS_REHASH, READONLY, copy_local_tree, directory_checksum, flip_first_byte, md5, stage_body,
};

/// Flips the first byte of a stored copy in place and puts its modification time
/// back, as bit rot would leave it: same size, same mtime, same inode.
fn rot_first_byte(path: &Path) {
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    flip_first_byte(path);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

/// `quire validate ARGS` as admin; returns the output and its stdout as text.
fn cli_validate(node: &TestNode, args: &[&str]) -> (Output, String) {
    let mut all = vec!["validate"];
    all.extend(args);
    let output = node.cli(&all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// The table row of the one copy in `quire validate`'s output.
fn only_row(stdout: &str) -> &str {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row:\n{stdout}");
    assert!(lines[0].starts_with("RESULT"), "{stdout}");
    lines[1]
}

fn validate(node: &TestNode, name: &str) -> Vec<Value> {
    let (status, rows) = node.post_admin("validate/file", json!({"file_name": name}));
    assert_eq!(status, 200, "{rows}");
    rows.as_array().expect("a list of copies").clone()
}

#[test]
fn validate_reports_a_matching_copy() {
    let node = TestNode::with_config(&format!("name = \"validator\"\n{ALWAYS_REHASH}"));
    let bytes = b"intact bytes";
    node.upload("intact.dat", bytes);
    let instance = node.file_record("intact.dat")["instances"][0].clone();
    // The request exactly as the Librarian client sends it (no `fresh`).
    let rows = validate(&node, "intact.dat");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let mut row = rows[0].clone();
    let computed_time = row
        .as_object_mut()
        .unwrap()
        .remove("computed_time")
        .unwrap();
    assert!(
        quire::model::Timestamp::parse(computed_time.as_str().unwrap()).is_ok(),
        "{computed_time}"
    );
    // The protocol's fields, and quire's additions that clients ignore.
    assert_eq!(
        row,
        json!({
            "librarian": "validator",
            "store": instance["store_id"],
            "instance_id": instance["id"],
            "original_checksum": md5(bytes),
            "original_size": bytes.len(),
            "current_checksum": md5(bytes),
            "current_size": bytes.len(),
            "computed_same_checksum": true,
            "store_name": "main",
            "cached": false,
        })
    );
}

#[test]
fn validate_with_the_default_timeout_reuses_a_hash_of_an_unchanged_copy() {
    let node = TestNode::start();
    node.upload("fresh.dat", b"fresh bytes");
    let first = validate(&node, "fresh.dat");
    assert_eq!(first[0]["computed_same_checksum"], true, "{first:?}");
    assert_eq!(
        first[0]["cached"], false,
        "the first check after the upload hashes: {first:?}"
    );
    let second = validate(&node, "fresh.dat");
    assert_eq!(second[0]["computed_same_checksum"], true, "{second:?}");
    assert_eq!(second[0]["cached"], true, "{second:?}");
    assert_eq!(
        second[0]["computed_time"], first[0]["computed_time"],
        "a cached answer says when its hash was computed"
    );
    // Asked for a fresh check, the node hashes again.
    let (status, fresh) = node.post_admin(
        "validate/file",
        json!({"file_name": "fresh.dat", "fresh": true}),
    );
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh[0]["cached"], false, "{fresh}");
    assert_ne!(fresh[0]["computed_time"], first[0]["computed_time"]);
}

#[test]
fn a_copy_that_changed_or_vanished_is_rehashed_even_without_fresh() {
    let node = TestNode::start();
    let names = ["flipped.dat", "grown.dat", "touched.dat", "gone.dat"];
    for name in names {
        node.upload(name, format!("the bytes of {name}").as_bytes());
        validate(&node, name);
        let cached = validate(&node, name);
        assert_eq!(
            cached[0]["cached"], true,
            "{name} is trusted now: {cached:?}"
        );
    }
    let root = node.store_root();
    flip_first_byte(&root.join("flipped.dat"));
    let path = root.join("grown.dat");
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    let mut grown = fs::read(&path).unwrap();
    grown.push(b'!');
    flip_first_byte(&path);
    fs::write(&path, &grown).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let path = root.join("touched.dat");
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    fs::remove_file(root.join("gone.dat")).unwrap();

    for (name, matches) in [
        ("flipped.dat", false),
        ("grown.dat", false),
        ("touched.dat", true),
        ("gone.dat", false),
    ] {
        let rows = validate(&node, name);
        assert_eq!(rows[0]["cached"], false, "{name} was hashed: {rows:?}");
        assert_eq!(
            rows[0]["computed_same_checksum"], matches,
            "{name}: {rows:?}"
        );
    }
    // The mismatch is not forgotten by the next cached check.
    let again = validate(&node, "flipped.dat");
    assert_eq!(again[0]["computed_same_checksum"], false, "{again:?}");
    assert_eq!(again[0]["cached"], false, "{again:?}");
}

#[test]
fn quire_validate_rehashes_by_default_and_labels_cached_answers() {
    let node = TestNode::start();
    node.upload("rot.dat", b"bytes that will rot in place");
    let (output, stdout) = cli_validate(&node, &["rot.dat"]);
    assert!(output.status.success(), "{output:?}");
    let row = only_row(&stdout);
    assert!(
        row.starts_with("ok ") && row.contains(" main ") && row.contains("fresh "),
        "the store by name, and a fresh hash: {row}"
    );

    // Bit rot: the same size, modification time and inode, other bytes.
    rot_first_byte(&node.store_root().join("rot.dat"));
    let (output, stdout) = cli_validate(&node, &["rot.dat", "--cached"]);
    assert!(
        output.status.success(),
        "the cached answer is the earlier match: {output:?}"
    );
    let row = only_row(&stdout);
    assert!(
        row.starts_with("ok ") && row.contains("cached ") && row.contains(" UTC ("),
        "labelled cached, with when it was computed: {row}"
    );

    let (output, stdout) = cli_validate(&node, &["rot.dat"]);
    assert!(!output.status.success(), "a mismatch exits non-zero");
    let row = only_row(&stdout);
    assert!(
        row.starts_with("MISMATCH ") && row.contains("fresh "),
        "{row}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 of 1 copies of rot.dat"), "{stderr}");

    // Once a hash found the mismatch, no cached answer hides it.
    let (output, stdout) = cli_validate(&node, &["rot.dat", "--cached"]);
    assert!(!output.status.success(), "{stdout}");
    assert!(only_row(&stdout).starts_with("MISMATCH "), "{stdout}");

    let (output, stdout) = cli_validate(&node, &["rot.dat", "--json"]);
    assert!(!output.status.success());
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows[0]["store_name"], "main", "{rows}");
    assert_eq!(rows[0]["cached"], false, "{rows}");
}

#[test]
fn quire_validate_reports_a_missing_copy_and_exits_non_zero() {
    let node = TestNode::start();
    node.upload("lost.dat", b"lost");
    validate(&node, "lost.dat");
    fs::remove_file(node.store_root().join("lost.dat")).unwrap();
    let (output, stdout) = cli_validate(&node, &["lost.dat", "--cached"]);
    assert!(!output.status.success(), "{stdout}");
    let row = only_row(&stdout);
    assert!(
        row.starts_with("MISSING ") && row.contains("fresh "),
        "never answered from the cache: {row}"
    );
}

#[test]
fn validate_detects_a_flipped_byte_and_records_a_data_integrity_error() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let bytes = b"bytes that will rot";
    node.upload("rot.dat", bytes);
    flip_first_byte(&node.store_root().join("rot.dat"));
    let rows = validate(&node, "rot.dat");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows:?}");
    assert_eq!(rows[0]["original_checksum"], md5(bytes));
    assert_ne!(rows[0]["current_checksum"], md5(bytes));
    assert_eq!(rows[0]["current_size"], bytes.len());

    let (status, errors) = node.post_admin("search/error", json!({"category": "data_integrity"}));
    assert_eq!(status, 200, "{errors}");
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["category"], "data_integrity");
    assert_eq!(errors[0]["severity"], "error");
    assert_eq!(errors[0]["cleared"], false);
    assert!(
        errors[0]["message"].as_str().unwrap().contains("rot.dat"),
        "{errors:?}"
    );
}

#[test]
fn validate_matches_again_once_the_copy_is_repaired() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let path = node.store_root().join("repaired.dat");
    node.upload("repaired.dat", b"repairable");
    flip_first_byte(&path);
    assert_eq!(
        validate(&node, "repaired.dat")[0]["computed_same_checksum"],
        false
    );
    flip_first_byte(&path);
    assert_eq!(
        validate(&node, "repaired.dat")[0]["computed_same_checksum"],
        true
    );
}

#[test]
fn validate_reports_a_missing_copy_as_not_matching() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    node.upload("vanished.dat", b"vanished");
    fs::remove_file(node.store_root().join("vanished.dat")).unwrap();
    let rows = validate(&node, "vanished.dat");
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows:?}");
    assert_eq!(rows[0]["current_size"], 0);
    let (status, errors) = node.post_admin("search/error", json!({}));
    assert_eq!(status, 200, "{errors}");
}

#[test]
fn validate_rehashes_a_directory() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let files: [(&str, &[u8]); 2] = [("x/one", b"one"), ("two", b"two")];
    let sum = directory_checksum(Algorithm::Md5, &[b"one", b"two"]);
    let (status, staged) = node.post_admin("upload/stage", stage_body("dir", 6, &sum, "ann"));
    assert_eq!(status, 201, "{staged}");
    copy_local_tree(&staged, &files);
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "{body}");
    let rows = validate(&node, "dir");
    assert_eq!(rows[0]["computed_same_checksum"], true, "{rows:?}");
    assert_eq!(rows[0]["current_checksum"], sum);
    flip_first_byte(&node.store_root().join("dir/x/one"));
    assert_eq!(validate(&node, "dir")[0]["computed_same_checksum"], false);
}

#[test]
fn a_directory_whose_file_changed_is_rehashed_even_without_fresh() {
    let node = TestNode::start();
    let files: [(&str, &[u8]); 2] = [("x/one", b"one"), ("two", b"two")];
    let sum = directory_checksum(Algorithm::Md5, &[b"one", b"two"]);
    let (status, staged) = node.post_admin("upload/stage", stage_body("tree", 6, &sum, "ann"));
    assert_eq!(status, 201, "{staged}");
    copy_local_tree(&staged, &files);
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "{body}");
    validate(&node, "tree");
    assert_eq!(validate(&node, "tree")[0]["cached"], true);
    // Only the file changes: the directories' own modification times do not.
    flip_first_byte(&node.store_root().join("tree/x/one"));
    let rows = validate(&node, "tree");
    assert_eq!(rows[0]["cached"], false, "{rows:?}");
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows:?}");
}

#[test]
fn validate_of_an_unknown_file_is_400() {
    let node = TestNode::start();
    let (status, body) = node.post_admin("validate/file", json!({"file_name": "ghost"}));
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("ghost"), "{body}");
}

#[test]
fn validate_is_allowed_to_readonly_accounts() {
    let node = TestNode::start();
    node.upload("shared.dat", b"shared");
    node.create_user("reader", "reader-pw", READONLY);
    let body = json!({"file_name": "shared.dat"});
    let (status, rows) = node.post("validate/file", body, "reader", "reader-pw");
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["computed_same_checksum"], true);
}

#[test]
fn a_copy_removed_with_its_directory_is_never_answered_from_the_cache() {
    let node = TestNode::start();
    node.upload("d/x", b"inside d");
    validate(&node, "d/x");
    assert_eq!(validate(&node, "d/x")[0]["cached"], true, "trusted now");
    fs::remove_dir_all(node.store_root().join("d")).unwrap();
    let rows = validate(&node, "d/x");
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows:?}");
    assert_eq!(rows[0]["cached"], false, "{rows:?}");
}
