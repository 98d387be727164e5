//! `validate/file`: re-hash each local copy and compare it with the file's record.

use std::fs;

use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{
    ALWAYS_REHASH, READONLY, copy_local_tree, directory_checksum, flip_first_byte, md5, stage_body,
};

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
    let rows = validate(&node, "intact.dat");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0],
        json!({
            "librarian": "validator",
            "store": instance["store_id"],
            "instance_id": instance["id"],
            "original_checksum": md5(bytes),
            "original_size": bytes.len(),
            "current_checksum": md5(bytes),
            "current_size": bytes.len(),
            "computed_same_checksum": true,
        })
    );
}

#[test]
fn validate_with_the_default_timeout_trusts_a_fresh_verification() {
    let node = TestNode::start();
    node.upload("fresh.dat", b"fresh bytes");
    let rows = validate(&node, "fresh.dat");
    assert_eq!(rows[0]["computed_same_checksum"], true, "{rows:?}");
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
