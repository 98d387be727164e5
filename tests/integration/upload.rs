//! `upload/stage` (every refusal, and the answer's fields) and successful uploads
//! with the local provider: the client writes the bytes to `staging_location`
//! itself, then commits.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{
    READONLY, checksum, commit_body, copy_local, copy_local_tree, directory_checksum, md5,
    stage_body, staging_location,
};

#[test]
fn stage_answers_201_with_every_field_and_creates_the_staging_directory() {
    let node = TestNode::with_config("local_hostnames = [\"client-a\", \"client-b\"]\n");
    let bytes = b"hello quire";
    let body = stage_body("obs/a.dat", bytes.len() as i64, &md5(bytes), "ann");
    let reply = node.post_raw(
        "upload/stage",
        body.to_string().as_bytes(),
        Some(node.admin()),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let staged = &reply.json;
    let mut keys: Vec<&str> = staged
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "available_bytes_on_store",
            "destination_location",
            "staging_location",
            "staging_name",
            "store_name",
            "transfer_id",
            "transfer_providers",
            "upload_name",
        ]
    );
    assert!(staged["available_bytes_on_store"].as_u64().unwrap() > 0);
    assert_eq!(staged["store_name"], "main");
    assert_eq!(staged["upload_name"], "obs/a.dat");
    assert_eq!(staged["destination_location"], "obs/a.dat");
    assert!(staged["transfer_id"].is_u64(), "{staged}");
    let staging_name = staged["staging_name"].as_str().unwrap();
    assert_eq!(staging_name.len(), 36, "a UUID: {staging_name}");
    assert_eq!(
        staging_name.matches('-').count(),
        4,
        "a UUID: {staging_name}"
    );
    let staging_dir = node.store_root().join(".quire-staging").join(staging_name);
    assert_eq!(staging_location(staged), staging_dir.join("obs/a.dat"));
    assert!(
        staging_dir.join("obs").is_dir(),
        "parents of the upload name exist"
    );
    assert_eq!(
        staged["transfer_providers"],
        json!({
            "local": {"hostnames": ["client-a", "client-b"]},
            "quire_http": {"hostnames": []},
        })
    );
    let local = reply.text.find("\"local\"").unwrap();
    let network = reply.text.find("\"quire_http\"").unwrap();
    assert!(local < network, "local must come first: {}", reply.text);
}

#[test]
fn local_provider_advertises_the_node_host_name_by_default() {
    let node = TestNode::start();
    let staged = node.stage("x", b"x");
    let hostnames = staged["transfer_providers"]["local"]["hostnames"]
        .as_array()
        .unwrap();
    assert_eq!(hostnames.len(), 1, "{staged}");
    assert!(!hostnames[0].as_str().unwrap().is_empty());
}

#[test]
fn committed_upload_is_searchable_and_stored_read_only_at_store_root_slash_name() {
    let node = TestNode::start();
    let bytes = b"observation data";
    let staged = node.stage("obs/2026/a.dat", bytes);
    copy_local(&staged, bytes);
    let body = commit_body(&staged, "local", "0", "test-uploader");
    let reply = node.post_raw(
        "upload/commit",
        body.to_string().as_bytes(),
        Some(node.admin()),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.text, "", "commit answers with an empty body");

    let stored = node.store_root().join("obs/2026/a.dat");
    assert_eq!(fs::read(&stored).unwrap(), bytes);
    let mode = fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "committed files are read-only: {mode:o}");
    let staging_dir = node
        .store_root()
        .join(".quire-staging")
        .join(staged["staging_name"].as_str().unwrap());
    assert!(!staging_dir.exists(), "staging is removed after commit");

    let file = node.file_record("obs/2026/a.dat");
    assert_eq!(file["name"], "obs/2026/a.dat");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["checksum"], md5(bytes));
    assert_eq!(file["uploader"], "test-uploader");
    assert_eq!(file["source"], "admin");
    assert_eq!(file["remote_instances"], json!([]));
    let create_time = file["create_time"].as_str().unwrap();
    assert_eq!(&create_time[10..11], "T", "{create_time}");
    assert!(
        !create_time.ends_with('Z') && !create_time.contains('+'),
        "{create_time}"
    );
    let instances = file["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{file}");
    let instance = &instances[0];
    assert_eq!(instance["path"], stored.to_str().unwrap());
    assert_eq!(instance["deletion_policy"], 0);
    assert_eq!(instance["available"], true);
    assert_eq!(instance["file_name"], "obs/2026/a.dat");
    assert!(
        instance["id"].is_u64() && instance["store_id"].is_u64(),
        "{instance}"
    );
    assert!(instance["created_time"].is_string(), "{instance}");
}

#[test]
fn directory_upload_through_the_local_provider_uses_the_directory_checksum_rule() {
    let node = TestNode::start();
    let files: [(&str, &[u8]); 3] = [
        ("a.txt", b"first file"),
        ("sub/b.txt", b"second"),
        ("sub/deeper/c.bin", b"\x00\x01\x02"),
    ];
    let contents: Vec<&[u8]> = files.iter().map(|(_, bytes)| *bytes).collect();
    let size: usize = contents.iter().map(|bytes| bytes.len()).sum();
    let sum = directory_checksum(Algorithm::Md5, &contents);
    let body = stage_body("run-1", size as i64, &sum, "ann");
    let (status, staged) = node.post_admin("upload/stage", body);
    assert_eq!(status, 201, "{staged}");
    copy_local_tree(&staged, &files);
    fs::create_dir_all(staging_location(&staged).join("empty")).unwrap();
    let (status, reply) = node.commit(&staged);
    assert_eq!(status, 200, "{reply}");
    for (relative, bytes) in files {
        assert_eq!(
            fs::read(node.store_root().join("run-1").join(relative)).unwrap(),
            bytes
        );
    }
    let file = node.file_record("run-1");
    assert_eq!(file["size"], size);
    assert_eq!(file["checksum"], sum);
}

#[test]
fn upload_with_an_xxh3_checksum_is_recorded_with_it() {
    let node = TestNode::start();
    let bytes = b"the real client hashes with xxh3";
    let sum = checksum(Algorithm::Xxh3, bytes);
    let body = stage_body("x.dat", bytes.len() as i64, &sum, "ann");
    let (status, staged) = node.post_admin("upload/stage", body);
    assert_eq!(status, 201, "{staged}");
    copy_local(&staged, bytes);
    let (status, reply) = node.commit(&staged);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(node.file_record("x.dat")["checksum"], sum);
}

#[test]
fn stage_refuses_an_existing_name_with_409() {
    let node = TestNode::start();
    node.upload("taken", b"first");
    let (status, body) = node.stage_as("taken", b"second", "ann", node.admin());
    assert_eq!(status, 409, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("already exists"),
        "{body}"
    );
    assert!(body["suggested_remedy"].is_string(), "{body}");
}

fn assert_stage_refused(node: &TestNode, body: Value, expect: &str) {
    let (status, reply) = node.post_admin("upload/stage", body.clone());
    assert_eq!(status, 400, "{body} -> {reply}");
    let reason = reply["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(expect),
        "{body}: reason {reason:?} should mention {expect:?}"
    );
    assert!(reply["suggested_remedy"].is_string(), "{reply}");
}

#[test]
fn stage_refuses_names_that_escape_the_store_root() {
    let node = TestNode::start();
    let sum = md5(b"x");
    for name in ["../escape", "a/../../escape", "a/.."] {
        assert_stage_refused(&node, stage_body(name, 1, &sum, "ann"), "..");
    }
    assert_stage_refused(&node, stage_body("/etc/passwd", 1, &sum, "ann"), "absolute");
    let mut bad_upload_name = stage_body("fine", 1, &sum, "ann");
    bad_upload_name["upload_name"] = json!("../elsewhere");
    assert_stage_refused(&node, bad_upload_name, "..");
    let (status, found) = node.post_admin("search/file", json!({}));
    assert_eq!(status, 404, "nothing was recorded: {found}");
}

#[test]
fn stage_refuses_names_not_in_normal_form() {
    let node = TestNode::start();
    let sum = md5(b"x");
    for name in ["a//b", "./a", "a/", "a/./b"] {
        assert_stage_refused(&node, stage_body(name, 1, &sum, "ann"), "normal form");
    }
    assert_stage_refused(
        &node,
        stage_body(".quire-staging/x", 1, &sum, "ann"),
        "reserved",
    );
}

#[test]
fn stage_refuses_a_negative_size_with_400() {
    let node = TestNode::start();
    assert_stage_refused(&node, stage_body("neg", -1, &md5(b""), "ann"), "negative");
}

#[test]
fn stage_refuses_an_unknown_checksum_algorithm_with_400() {
    let node = TestNode::start();
    assert_stage_refused(
        &node,
        stage_body("c", 1, "crc32:::00000000", "ann"),
        "crc32",
    );
}

#[test]
fn stage_refuses_uploads_over_maximal_upload_size_with_413() {
    let node = TestNode::with_config("maximal_upload_size_bytes = 16\n");
    let (status, body) = node.post_admin("upload/stage", stage_body("big", 17, &md5(b""), "ann"));
    assert_eq!(status, 413, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("16"), "{body}");
    let (status, body) = node.post_admin("upload/stage", stage_body("fits", 16, &md5(b""), "ann"));
    assert_eq!(status, 201, "exactly the maximum is allowed: {body}");
}

#[test]
fn stage_by_a_readonly_account_is_401() {
    let node = TestNode::start();
    node.create_user("reader", "reader-pw", READONLY);
    let (status, body) = node.stage_as("r", b"r", "ann", ("reader", "reader-pw"));
    assert_eq!(status, 401);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("The account 'reader' has level readonly; this route needs readappend."),
        "{detail}"
    );
}

#[test]
fn stage_with_malformed_json_is_422_json_invalid() {
    let node = TestNode::start();
    let reply = node.post_raw("upload/stage", b"{\"upload_size\": 1,", Some(node.admin()));
    assert_eq!(reply.status, 422, "{}", reply.text);
    let detail = reply.json["detail"].as_array().expect("detail is a list");
    assert_eq!(detail[0]["type"], "json_invalid");
    assert_eq!(detail[0]["loc"][0], "body");
    for key in ["loc", "msg", "input"] {
        assert!(
            detail[0].get(key).is_some(),
            "{key} missing: {}",
            reply.text
        );
    }
}

#[test]
fn stage_with_a_missing_field_is_422_missing_naming_it() {
    let node = TestNode::start();
    let mut body = stage_body("m", 1, &md5(b"m"), "ann");
    body.as_object_mut().unwrap().remove("upload_checksum");
    let (status, reply) = node.post_admin("upload/stage", body);
    assert_eq!(status, 422, "{reply}");
    let item = &reply["detail"][0];
    assert_eq!(item["type"], "missing");
    assert_eq!(item["loc"], json!(["body", "upload_checksum"]));
    assert_eq!(item["msg"], "Field required");
}

#[test]
fn disabled_store_is_never_chosen_for_staging() {
    let node = TestNode::start();
    let change = |enabled: bool| {
        let (status, body) = node.post_admin(
            "admin/stores/state_change",
            json!({"store_name": "main", "enabled": enabled}),
        );
        assert_eq!(status, 200, "{body}");
    };
    change(false);
    let (status, body) = node.stage_as("d", b"d", "ann", node.admin());
    assert_eq!(status, 413, "{body}");
    change(true);
    let (status, body) = node.stage_as("d", b"d", "ann", node.admin());
    assert_eq!(status, 201, "{body}");
}

#[test]
fn upload_name_and_destination_may_differ() {
    let node = TestNode::start();
    let bytes = b"named locally";
    let mut body = stage_body(
        "obs/2026/remote-name.dat",
        bytes.len() as i64,
        &md5(bytes),
        "ann",
    );
    body["upload_name"] = json!("local-name.dat");
    let (status, staged) = node.post_admin("upload/stage", body);
    assert_eq!(status, 201, "{staged}");
    assert!(
        staged["staging_location"]
            .as_str()
            .unwrap()
            .ends_with("/local-name.dat"),
        "{staged}"
    );
    copy_local(&staged, bytes);
    let (status, reply) = node.commit(&staged);
    assert_eq!(status, 200, "{reply}");
    let stored = node.store_root().join("obs/2026/remote-name.dat");
    assert_eq!(fs::read(stored).unwrap(), bytes);
    assert!(!node.store_root().join("local-name.dat").exists());
}
