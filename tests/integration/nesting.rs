//! A stored file is immutable, so nothing may be stored inside it, and a name that
//! is the directory of stored files names no file: every way a name enters the
//! node (stage, batch stage, batch put, commit, clone stage, admin add_file,
//! drop-boxes, start-up recovery) refuses both with 409 and names the file in the
//! way.

use std::fs;
use std::time::{Duration, Instant};

use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{
    batch_put, batch_put_body, copy_local, copy_local_tree, directory_checksum, md5, stage_body,
};

/// Stores a directory `name` holding `inner/one` and `two`.
fn upload_directory(node: &TestNode, name: &str) {
    let files: [(&str, &[u8]); 2] = [("inner/one", b"one"), ("two", b"two")];
    let sum = directory_checksum(Algorithm::Md5, &[b"one", b"two"]);
    let (status, staged) = node.post_admin("upload/stage", stage_body(name, 6, &sum, "ann"));
    assert_eq!(status, 201, "{staged}");
    copy_local_tree(&staged, &files);
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 200, "{body}");
}

/// Asserts a 409 whose reason names `file`.
fn assert_conflict_naming(status: u16, body: &Value, file: &str) {
    assert_eq!(status, 409, "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("'{file}'")), "{body}");
}

fn stage(node: &TestNode, name: &str, bytes: &[u8]) -> (u16, Value) {
    node.post_admin(
        "upload/stage",
        stage_body(name, bytes.len() as i64, &md5(bytes), "ann"),
    )
}

#[test]
fn a_file_inside_a_stored_directory_is_refused_at_stage() {
    let node = TestNode::start();
    upload_directory(&node, "d");
    for name in ["d/x", "d/inner/x", "d/inner/one/deeper"] {
        let (status, body) = stage(&node, name, b"x");
        assert_conflict_naming(status, &body, "d");
        assert!(
            body["reason"].as_str().unwrap().contains("inside"),
            "{body}"
        );
    }
    // A stored regular file is in the way the same.
    node.upload("plain", b"plain");
    let (status, body) = stage(&node, "plain/x", b"x");
    assert_conflict_naming(status, &body, "plain");
    // Nothing was stored inside `d`.
    let entries: Vec<String> = fs::read_dir(node.store_root().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
}

#[test]
fn a_name_holding_a_stored_file_is_refused_naming_that_file() {
    let node = TestNode::start();
    node.upload("p/q/r", b"deep");
    for name in ["p", "p/q"] {
        let (status, body) = stage(&node, name, b"p");
        assert_conflict_naming(status, &body, "p/q/r");
    }
    // A sibling whose name only starts the same is no conflict.
    assert_eq!(stage(&node, "p/q2", b"p").0, 201);
    assert_eq!(stage(&node, "p.", b"p").0, 201);
}

#[test]
fn batch_stage_refuses_nested_names_item_by_item() {
    let node = TestNode::start();
    upload_directory(&node, "d");
    node.upload("h/q", b"held");
    let uploads: Vec<Value> = ["d/x", "h", "free"]
        .iter()
        .map(|name| stage_body(name, 1, &md5(b"x"), "ann"))
        .collect();
    let (status, reply) = node.post_admin("upload/batch_stage", json!({ "uploads": uploads }));
    assert_eq!(status, 201, "{reply}");
    let items = reply["uploads"].as_array().unwrap();
    assert_conflict_naming(409, &items[0]["error"], "d");
    assert_eq!(items[0]["error"]["status"], 409, "{reply}");
    assert_conflict_naming(409, &items[1]["error"], "h/q");
    assert_eq!(items[1]["error"]["status"], 409, "{reply}");
    assert!(items[2]["error"].is_null(), "{reply}");
}

#[test]
fn batch_put_refuses_names_inside_stored_files_and_nested_within_the_batch() {
    let node = TestNode::start();
    upload_directory(&node, "d");
    let files: [(&str, &[u8]); 4] = [
        ("d/x", b"inside"),
        ("n", b"outer"),
        ("n/m", b"nested in the same batch"),
        ("fine", b"fine"),
    ];
    let (status, reply) = batch_put(&node, batch_put_body("ann", &files), node.admin());
    assert_eq!(status, 200, "{reply}");
    let answers = reply["files"].as_array().unwrap();
    assert_conflict_naming(409, &answers[0]["error"], "d");
    assert!(answers[1]["error"].is_null(), "{reply}");
    assert_conflict_naming(409, &answers[2]["error"], "n");
    assert_eq!(answers[2]["error"]["status"], 409, "{reply}");
    assert!(answers[3]["error"].is_null(), "{reply}");
    assert!(!node.store_root().join("d/x").exists());
    assert!(node.store_root().join("n").is_file());
    assert_eq!(node.search_name("n/m").0, 404);
}

#[test]
fn of_two_staged_nested_names_the_second_commit_is_refused() {
    let node = TestNode::start();
    // The directory first, then a file inside it.
    let files: [(&str, &[u8]); 1] = [("one", b"one")];
    let sum = directory_checksum(Algorithm::Md5, &[b"one"]);
    let (status, outer) = node.post_admin("upload/stage", stage_body("r", 3, &sum, "ann"));
    assert_eq!(status, 201, "{outer}");
    let (status, inner) = stage(&node, "r/x", b"inner");
    assert_eq!(status, 201, "neither is stored yet: {inner}");
    copy_local_tree(&outer, &files);
    copy_local(&inner, b"inner");
    assert_eq!(node.commit(&outer).0, 200);
    let (status, body) = node.commit(&inner);
    assert_conflict_naming(status, &body, "r");
    assert!(!node.store_root().join("r/x").exists());
    assert_eq!(node.search_name("r/x").0, 404);

    // The file first, then the directory that would hold it.
    let (status, outer) = node.post_admin("upload/stage", stage_body("s", 3, &sum, "ann"));
    assert_eq!(status, 201, "{outer}");
    let (status, inner) = stage(&node, "s/x", b"inner");
    assert_eq!(status, 201, "{inner}");
    copy_local_tree(&outer, &files);
    copy_local(&inner, b"inner");
    assert_eq!(node.commit(&inner).0, 200);
    let (status, body) = node.commit(&outer);
    assert_conflict_naming(status, &body, "s/x");
    assert_eq!(fs::read(node.store_root().join("s/x")).unwrap(), b"inner");
}

#[test]
fn clone_stage_refuses_a_name_inside_a_stored_file() {
    let node = TestNode::start();
    upload_directory(&node, "d");
    let body = json!({
        "upload_size": 1,
        "upload_checksum": md5(b"x"),
        "upload_name": "x",
        "destination_location": "d/x",
        "uploader": "ann",
        "source": "elsewhere",
        "source_transfer_id": 7,
    });
    let (status, reply) = node.post_admin("clone/stage", body);
    assert_eq!(status, 409, "{reply}");
    // The clone routes answer `{"detail": "<failure body as JSON>"}`.
    let detail: Value = serde_json::from_str(reply["detail"].as_str().unwrap()).unwrap();
    assert_conflict_naming(409, &detail, "d");
}

#[test]
fn admin_add_file_refuses_data_inside_a_stored_file() {
    let node = TestNode::start();
    upload_directory(&node, "d");
    let path = node.store_root().join("d/planted");
    let made_writable = {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(
            node.store_root().join("d"),
            fs::Permissions::from_mode(0o755),
        )
    };
    made_writable.unwrap();
    fs::write(&path, b"planted").unwrap();
    let (status, body) = node.post_admin(
        "admin/add_file",
        json!({
            "name": "d/planted",
            "create_time": "2026-01-01T00:00:00Z",
            "size": 7,
            "checksum": md5(b"planted"),
            "uploader": "ann",
            "source": "ann",
            "path": path,
            "store_name": "main",
        }),
    );
    assert_conflict_naming(status, &body, "d");
    assert_eq!(node.search_name("d/planted").0, 404);
}

#[test]
fn recovery_never_moves_a_stored_file_for_a_transfer_of_its_directory() {
    let mut node = TestNode::start();
    // Staged but never copied: at start-up, what is at its name looks like an
    // interrupted commit of it when its size matches.
    let (status, staged) = stage(&node, "t", b"12345");
    assert_eq!(status, 201, "{staged}");
    node.upload("t/x", b"12345");
    node.restart();
    assert_eq!(
        fs::read(node.store_root().join("t/x")).unwrap(),
        b"12345",
        "{}",
        node.log()
    );
    let (status, rows) = node.post_admin("validate/file", json!({"file_name": "t/x"}));
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["computed_same_checksum"], true, "{rows}");
    // The transfer of `t` can never complete: it was failed.
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_drop_box_refuses_names_nested_with_stored_files() {
    let node = TestNode::with_config(
        "[[dropbox]]\npath = \"dropbox\"\nprefix = \"p\"\nafter_ingest = \"delete\"\n\
         settle_seconds = 1\nrescan_seconds = 0.2\n",
    );
    let root = node.data_dir.join("dropbox");
    upload_directory(&node, "p/d");
    node.upload("p/h/q", b"held");
    fs::create_dir_all(root.join("d")).unwrap();
    fs::write(root.join("d/x"), b"inside").unwrap();
    fs::write(root.join("h"), b"holder").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let messages = loop {
        let (status, found) = node.post_admin("search/error", json!({"max_results": 100}));
        let messages: Vec<String> = match status {
            200 => found
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["caller"] == "dropbox")
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect(),
            _ => Vec::new(),
        };
        if messages.len() >= 2 {
            break messages;
        }
        assert!(
            Instant::now() < deadline,
            "no drop-box errors: {messages:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let about = |file: &str| messages.iter().find(|m| m.contains(file)).cloned();
    let inside = about(root.join("d/x").to_str().unwrap()).expect("d/x reported");
    assert!(inside.contains("'p/d'"), "{inside}");
    let holder = about(root.join("h").to_str().unwrap()).expect("h reported");
    assert!(holder.contains("'p/h/q'"), "{holder}");
    // Both stay in the drop-box; nothing was stored.
    assert_eq!(fs::read(root.join("d/x")).unwrap(), b"inside");
    assert_eq!(fs::read(root.join("h")).unwrap(), b"holder");
    assert!(!node.store_root().join("p/d/x").exists());
    assert_eq!(node.search_name("p/d/x").0, 404);
}

#[test]
fn quire_upload_reports_a_name_inside_a_stored_file_with_the_nodes_reason() {
    let node = TestNode::start();
    upload_directory(&node, "d");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    fs::write(&file, b"x").unwrap();
    let single = node.cli(&["upload", file.to_str().unwrap(), "d/x"]);
    let stderr = String::from_utf8_lossy(&single.stderr);
    assert!(!single.status.success(), "{stderr}");
    assert!(stderr.contains("inside the stored file 'd'"), "{stderr}");
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("y"), b"y").unwrap();
    let batch = node.cli(&["upload", "--batch", tree.to_str().unwrap(), "d"]);
    let stderr = String::from_utf8_lossy(&batch.stderr);
    assert!(!batch.status.success(), "{stderr}");
    assert!(stderr.contains("inside the stored file 'd'"), "{stderr}");
    assert_eq!(node.search_name("d/y").0, 404);
}
