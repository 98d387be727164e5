//! `upload/commit` with the local provider: what a commit refuses, what it records,
//! how staging interacts with transfers already under way, and commits (single and
//! batch) whose caller hangs up.

use std::fs;

use serde_json::{Value, json};

use crate::batch::{Unanswered, recorded_by, wait_until};
use crate::node::TestNode;
use crate::support::{READAPPEND, copy_local, md5, staging_location};

#[test]
fn commit_to_a_store_disabled_after_staging_is_406() {
    let node = TestNode::start();
    let staged = node.stage("late", b"late");
    copy_local(&staged, b"late");
    let (status, body) = node.post_admin(
        "admin/stores/state_change",
        json!({"store_name": "main", "enabled": false}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 406, "{body}");
    assert!(!node.store_root().join("late").exists());
}

fn assert_nothing_recorded(node: &TestNode, staged: &Value) {
    let name = staged["destination_location"].as_str().unwrap();
    let (status, body) = node.search_name(name);
    assert_eq!(status, 404, "{body}");
    assert!(
        !node.store_root().join(name).exists(),
        "no bytes in the store"
    );
    let staging_dir = node
        .store_root()
        .join(".quire-staging")
        .join(staged["staging_name"].as_str().unwrap());
    assert!(!staging_dir.exists(), "the staging directory is removed");
}

#[test]
fn commit_with_a_wrong_checksum_is_406_and_records_nothing() {
    let node = TestNode::start();
    let staged = node.stage("bad-sum", b"expected bytes");
    copy_local(&staged, b"tampered bytes");
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 406, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("does not match"),
        "{body}"
    );
    assert_nothing_recorded(&node, &staged);
    let (status, body) = node.commit(&staged);
    assert_eq!(
        status, 404,
        "the failed transfer cannot be committed again: {body}"
    );
}

#[test]
fn commit_with_a_wrong_size_is_406_and_records_nothing() {
    let node = TestNode::start();
    let staged = node.stage("bad-size", b"twelve bytes");
    copy_local(&staged, b"twelve bytes and more");
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 406, "{body}");
    assert_nothing_recorded(&node, &staged);
}

#[test]
fn commit_of_missing_staged_data_is_404() {
    let node = TestNode::start();
    let staged = node.stage("never-copied", b"never copied");
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 404, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    let (status, _) = node.search_name("never-copied");
    assert_eq!(status, 404);
}

#[test]
fn commit_of_an_unknown_transfer_is_404() {
    let node = TestNode::start();
    let mut staged = node.stage("u", b"u");
    staged["transfer_id"] = json!(999_999);
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn commit_by_another_account_is_401_and_leaves_the_transfer_usable() {
    let node = TestNode::start();
    node.create_user("bob", "bob-pw", READAPPEND);
    let staged = node.stage("mine", b"mine");
    copy_local(&staged, b"mine");
    let (status, body) = node.commit_as(&staged, "0", ("bob", "bob-pw"));
    assert_eq!(status, 401, "{body}");
    assert_eq!(body, json!({"detail": "Incorrect username or password"}));
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "the owner can still commit: {body}");
}

#[test]
fn second_commit_of_the_same_name_is_409_and_keeps_the_first_bytes() {
    let node = TestNode::start();
    let first = node.stage("twice", b"first!");
    let second = node.stage("twice", b"second");
    assert_ne!(first["transfer_id"], second["transfer_id"]);
    copy_local(&first, b"first!");
    copy_local(&second, b"second");
    let (status, body) = node.commit(&first);
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.commit(&second);
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        fs::read(node.store_root().join("twice")).unwrap(),
        b"first!"
    );
    assert_eq!(node.file_record("twice")["checksum"], md5(b"first!"));
    let (status, body) = node.commit(&first);
    assert_eq!(
        status, 409,
        "a completed transfer is already on the store: {body}"
    );
}

#[test]
fn restaging_the_same_upload_resumes_the_same_transfer() {
    let node = TestNode::start();
    let first = node.stage("again", b"again");
    let second = node.stage("again", b"again");
    assert_eq!(first["transfer_id"], second["transfer_id"]);
    assert_eq!(first["staging_location"], second["staging_location"]);
    copy_local(&second, b"again");
    let (status, body) = node.commit(&first);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn staging_the_same_checksum_by_another_account_fails_the_earlier_transfer() {
    let node = TestNode::start();
    node.create_user("bob", "bob-pw", READAPPEND);
    let admins = node.stage("contested", b"same bytes");
    copy_local(&admins, b"same bytes");
    let (status, bobs) = node.stage_as("contested", b"same bytes", "bob", ("bob", "bob-pw"));
    assert_eq!(status, 201, "{bobs}");
    assert_ne!(admins["transfer_id"], bobs["transfer_id"]);
    let (status, body) = node.commit(&admins);
    assert_eq!(status, 404, "the earlier transfer was failed: {body}");
    copy_local(&bobs, b"same bytes");
    let (status, body) = node.commit_as(&bobs, "0", ("bob", "bob-pw"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(node.file_record("contested")["source"], "bob");
}

#[test]
fn deletion_policy_one_and_allowed_both_record_allowed() {
    let node = TestNode::start();
    let cases = [
        ("1", 1),
        ("allowed", 1),
        ("ALLOWED", 1),
        ("0", 0),
        ("disallowed", 0),
    ];
    for (index, (policy, expected)) in cases.into_iter().enumerate() {
        let name = format!("policy-{index}");
        let bytes = name.as_bytes();
        let staged = node.stage(&name, bytes);
        copy_local(&staged, bytes);
        let (status, body) = node.commit_as(&staged, policy, node.admin());
        assert_eq!(status, 200, "{body}");
        let file = node.file_record(&name);
        assert_eq!(
            file["instances"][0]["deletion_policy"], expected,
            "policy {policy:?}"
        );
    }
}

#[test]
fn a_symbolic_link_in_place_of_the_staged_data_is_refused_at_commit() {
    let node = TestNode::start();
    let secret = node.dir.path().join("outside.txt");
    fs::write(&secret, b"not the client's to upload").unwrap();
    let bytes = b"not the client's to upload";
    let staged = node.stage("linked", bytes);
    std::os::unix::fs::symlink(&secret, staging_location(&staged)).unwrap();
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("symbolic link"),
        "{body}"
    );
    let (status, _) = node.search_name("linked");
    assert_eq!(status, 404);
    assert!(secret.exists(), "the link target is untouched");
}

/// Deliberate difference from the reference, which fails every unfinished
/// transfer with the same checksum: identical bytes uploaded under two names (empty
/// files, duplicates in a batch) must not cancel each other.
#[test]
fn identical_bytes_under_two_names_both_commit() {
    let node = TestNode::start();
    let earlier = node.stage("first-name", b"identical bytes");
    copy_local(&earlier, b"identical bytes");
    let later = node.stage("second-name", b"identical bytes");
    copy_local(&later, b"identical bytes");
    assert_ne!(earlier["transfer_id"], later["transfer_id"]);
    let (status, body) = node.commit(&earlier);
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.commit(&later);
    assert_eq!(status, 200, "{body}");
}

/// `upload/commit` whose caller hangs up once the bytes are in the store: the
/// commit runs to the end, so the upload is recorded and nothing is left behind.
#[test]
fn a_commit_whose_caller_hangs_up_after_the_rename_is_still_recorded() {
    let node = TestNode::start();
    let bytes = b"hung up on\n".repeat(1 << 20);
    let staged = node.stage("hung/up/one", &bytes);
    copy_local(&staged, &bytes);
    let body = crate::support::commit_body(&staged, "local", "0", "test-uploader");
    let body = serde_json::to_vec(&body).unwrap();
    let request = Unanswered::send(
        &node,
        "POST",
        "upload/commit",
        Some("application/json"),
        &body,
    );
    let target = node.store_root().join("hung/up/one");
    wait_until("the upload is renamed into the store", || target.exists());
    request.hang_up();
    wait_until("the upload is recorded after the hang-up", || {
        node.search_name("hung/up/one").0 == 200
    });
    let record = node.file_record("hung/up/one");
    assert_eq!(record["checksum"], md5(&bytes), "{record}");
    assert_eq!(fs::read(&target).unwrap(), bytes);
    let staging = node.store_root().join(".quire-staging");
    wait_until("the staging directory is removed", || {
        fs::read_dir(&staging).unwrap().count() == 0
    });
    // The name is taken for good: a second upload of it is refused.
    let again = node.stage_as("hung/up/one", b"other", "test-uploader", node.admin());
    assert_eq!(again.0, 409, "{}", again.1);
}

/// `upload/batch_commit` whose caller hangs up once the first item is in the
/// store: every item is still recorded and staging is emptied.
#[test]
fn a_batch_commit_whose_caller_hangs_up_after_the_first_rename_is_still_recorded() {
    let node = TestNode::start();
    // Under 16 items, one directory each: every directory is synced on its own
    // after the renames, so the items are recorded some time after the first one
    // appears.
    let items: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            let bytes = format!("item {i}\n").repeat(32 << 10).into_bytes();
            (format!("hung/d{i}/item"), bytes)
        })
        .collect();
    let uploads: Vec<Value> = items
        .iter()
        .map(|(name, bytes)| {
            crate::support::stage_body(name, bytes.len() as i64, &md5(bytes), "hanger")
        })
        .collect();
    let (status, staged) = node.post_admin("upload/batch_stage", json!({ "uploads": uploads }));
    assert_eq!(status, 201, "{staged}");
    let commits: Vec<Value> = staged["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&items)
        .map(|(item, (_, bytes))| {
            fs::write(item["staging_location"].as_str().unwrap(), bytes).unwrap();
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
                "uploader": "hanger",
                "transfer_id": item["transfer_id"],
            })
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "commits": commits })).unwrap();
    let request = Unanswered::send(
        &node,
        "POST",
        "upload/batch_commit",
        Some("application/json"),
        &body,
    );
    let targets: Vec<_> = items
        .iter()
        .map(|(name, _)| node.store_root().join(name))
        .collect();
    wait_until("the first item is renamed into the store", || {
        targets.iter().any(|t| t.exists())
    });
    request.hang_up();
    wait_until("every item is recorded after the hang-up", || {
        recorded_by(&node, "hanger") == items.len()
    });
    for ((name, bytes), target) in items.iter().zip(&targets) {
        assert!(fs::read(target).unwrap() == *bytes, "the bytes of {name}");
    }
    let staging = node.store_root().join(".quire-staging");
    wait_until("staging is emptied", || {
        fs::read_dir(&staging).unwrap().count() == 0
    });
}
