//! `search/file`, `search/instance_local` and `search/instance_remote`.

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{READAPPEND, READONLY};

fn names(found: &Value) -> Vec<&str> {
    found
        .as_array()
        .expect("a list of files")
        .iter()
        .map(|file| file["name"].as_str().unwrap())
        .collect()
}

fn search(node: &TestNode, body: Value) -> Value {
    let (status, found) = node.post_admin("search/file", body.clone());
    assert_eq!(status, 200, "{body} -> {found}");
    found
}

fn assert_no_files(node: &TestNode, body: Value) {
    let (status, found) = node.post_admin("search/file", body.clone());
    assert_eq!(status, 404, "{body} -> {found}");
    assert_eq!(found["reason"], "No files found.", "{found}");
    assert!(found["suggested_remedy"].is_string(), "{found}");
}

#[test]
fn search_by_name_finds_exactly_that_file() {
    let node = TestNode::start();
    node.upload("one", b"one");
    node.upload("two", b"two");
    assert_eq!(names(&search(&node, json!({"name": "two"}))), ["two"]);
    assert_no_files(&node, json!({"name": "three"}));
}

#[test]
fn search_with_nothing_matching_is_404_no_files_found() {
    let node = TestNode::start();
    assert_no_files(&node, json!({}));
    assert_no_files(&node, json!({"name": "missing"}));
}

#[test]
fn search_results_are_newest_first() {
    let node = TestNode::start();
    for name in ["first", "second", "third"] {
        node.upload(name, name.as_bytes());
    }
    let found = search(&node, json!({}));
    assert_eq!(names(&found), ["third", "second", "first"]);
    let times: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["create_time"].as_str().unwrap())
        .collect();
    assert!(times[0] > times[1] && times[1] > times[2], "{times:?}");
}

#[test]
fn search_by_uploader_returns_only_that_uploaders_files_newest_first() {
    let node = TestNode::start();
    node.upload_as("a1", b"a1", "alice", node.admin());
    node.upload_as("c1", b"c1", "carl", node.admin());
    node.upload_as("a2", b"a2", "alice", node.admin());
    assert_eq!(
        names(&search(&node, json!({"uploader": "alice"}))),
        ["a2", "a1"]
    );
    assert_eq!(names(&search(&node, json!({"uploader": "carl"}))), ["c1"]);
    assert_no_files(&node, json!({"uploader": "nobody"}));
    assert_eq!(
        names(&search(&node, json!({"uploader": "alice", "name": "a1"}))),
        ["a1"]
    );
    assert_no_files(&node, json!({"uploader": "carl", "name": "a1"}));
}

#[test]
fn search_by_source_returns_the_files_the_account_uploaded() {
    let node = TestNode::start();
    node.create_user("bob", "bob-pw", READAPPEND);
    node.upload("from-admin", b"from admin");
    node.upload_as(
        "from-bob",
        b"from bob",
        "shared-uploader",
        ("bob", "bob-pw"),
    );
    assert_eq!(
        names(&search(&node, json!({"source": "bob"}))),
        ["from-bob"]
    );
    assert_eq!(
        names(&search(&node, json!({"source": "admin"}))),
        ["from-admin"]
    );
    assert_no_files(&node, json!({"source": "carol"}));
}

#[test]
fn search_by_time_window_is_inclusive_of_both_ends() {
    let node = TestNode::start();
    for name in ["early", "middle", "late"] {
        node.upload(name, name.as_bytes());
    }
    let time = |name: &str| {
        node.file_record(name)["create_time"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (early, middle, late) = (time("early"), time("middle"), time("late"));
    let window = |start: &str, end: &str| json!({"create_time_window": [start, end]});
    assert_eq!(names(&search(&node, window(&middle, &middle))), ["middle"]);
    assert_eq!(
        names(&search(&node, window(&early, &middle))),
        ["middle", "early"]
    );
    assert_eq!(
        names(&search(&node, window(&middle, "2999-01-01T00:00:00"))),
        ["late", "middle"]
    );
    assert_eq!(names(&search(&node, window(&late, &late))), ["late"]);
    assert_no_files(&node, window("2000-01-01T00:00:00", "2000-12-31T00:00:00"));
    let by_uploader = json!({"uploader": "test-uploader", "create_time_window": [early, early]});
    assert_eq!(names(&search(&node, by_uploader)), ["early"]);
}

#[test]
fn max_results_is_clamped_to_max_search_results() {
    let node = TestNode::with_config("max_search_results = 2\n");
    for name in ["f1", "f2", "f3"] {
        node.upload(name, name.as_bytes());
    }
    assert_eq!(
        names(&search(&node, json!({"max_results": 64}))),
        ["f3", "f2"]
    );
    assert_eq!(names(&search(&node, json!({}))), ["f3", "f2"]);
    assert_eq!(names(&search(&node, json!({"max_results": 1}))), ["f3"]);
}

#[test]
fn max_results_zero_returns_no_files() {
    let node = TestNode::start();
    node.upload("only", b"only");
    assert_no_files(&node, json!({"max_results": 0}));
}

#[test]
fn search_file_is_allowed_to_readonly_accounts_only_with_right_credentials() {
    let node = TestNode::start();
    node.upload("visible", b"visible");
    node.create_user("reader", "reader-pw", READONLY);
    let (status, found) = node.post("search/file", json!({}), "reader", "reader-pw");
    assert_eq!(status, 200, "{found}");
    assert_eq!(names(&found), ["visible"]);
    let (status, body) = node.post("search/file", json!({}), "reader", "wrong");
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Incorrect username or password"}));
}

#[test]
fn search_instance_local_finds_instances_by_file_name() {
    let node = TestNode::start();
    node.upload("held", b"held");
    let (status, found) = node.post_admin("search/instance_local", json!({"file_name": "held"}));
    assert_eq!(status, 200, "{found}");
    let instance = &found[0];
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(instance["file_name"], "held");
    assert_eq!(
        instance["path"],
        node.store_root().join("held").to_str().unwrap()
    );
    assert_eq!(instance["available"], true);
    assert_eq!(instance["deletion_policy"], 0);
    assert!(
        instance["id"].is_u64() && instance["store_id"].is_u64(),
        "{instance}"
    );
    let (status, found) = node.post_admin(
        "search/instance_local",
        json!({"deletion_policy": "allowed"}),
    );
    assert_eq!(status, 404, "{found}");
    let (status, found) = node.post_admin("search/instance_local", json!({"file_name": "nothing"}));
    assert_eq!(status, 404, "{found}");
    assert_eq!(found["reason"], "No instances found.");
}

#[test]
fn search_instance_remote_without_remote_copies_is_404() {
    let node = TestNode::start();
    node.upload("local-only", b"local only");
    let (status, found) = node.post_admin("search/instance_remote", json!({}));
    assert_eq!(status, 404, "{found}");
    assert_eq!(found["reason"], "No remote instances found.");
    let (status, found) =
        node.post_admin("search/instance_remote", json!({"file_name": "local-only"}));
    assert_eq!(status, 404, "{found}");
}

#[test]
fn instance_searches_need_the_admin_level() {
    let node = TestNode::start();
    node.create_user("reader", "reader-pw", READONLY);
    for route in [
        "search/instance_local",
        "search/instance_remote",
        "search/error",
    ] {
        let (status, body) = node.post(route, json!({}), "reader", "reader-pw");
        assert_eq!(status, 401, "{route}: {body}");
    }
}
