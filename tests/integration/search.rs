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

/// A node answering at most `limit` files per search, holding `before` single
/// uploads, then `batch` files stored by one `upload --batch` (so they share one
/// creation time), then `after` single uploads. Returns the node and every name,
/// newest first within each group.
fn node_with_a_crowded_instant(
    limit: usize,
    before: usize,
    batch: usize,
    after: usize,
) -> (TestNode, Vec<String>) {
    let node = TestNode::with_config(&format!("max_search_results = {limit}\n"));
    let mut names = Vec::new();
    for i in 0..before {
        names.push(format!("before/{i}"));
        node.upload(&format!("before/{i}"), format!("before {i}").as_bytes());
    }
    let source = node.dir.path().join("batch");
    std::fs::create_dir(&source).unwrap();
    for i in 0..batch {
        std::fs::write(source.join(format!("{i:02}")), format!("batch {i}")).unwrap();
        names.push(format!("batch/{i:02}"));
    }
    let uploaded = node.cli(&["upload", "--batch", source.to_str().unwrap(), "batch"]);
    assert!(uploaded.status.success(), "{}", text(&uploaded.stderr));
    let times: std::collections::HashSet<String> = (0..batch)
        .map(|i| node.file_record(&format!("batch/{i:02}"))["create_time"].to_string())
        .collect();
    assert_eq!(times.len(), 1, "one batch, one creation time: {times:?}");
    for i in 0..after {
        names.push(format!("after/{i}"));
        node.upload(&format!("after/{i}"), format!("after {i}").as_bytes());
    }
    (node, names)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The names of a `quire search --json` answer, in order.
fn cli_names(stdout: &[u8]) -> Vec<String> {
    let found: Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(stdout)));
    names(&found).into_iter().map(str::to_string).collect()
}

#[test]
fn the_cli_says_how_many_more_match_and_all_lists_each_file_once_across_page_edges() {
    // Pages of 8 end inside the batch of 6 files created at one instant.
    let (node, names) = node_with_a_crowded_instant(8, 3, 6, 3);

    let newest = node.cli(&["search", "--max-results", "5", "--json"]);
    assert!(newest.status.success(), "{}", text(&newest.stderr));
    let shown = cli_names(&newest.stdout);
    assert_eq!(shown.len(), 5);
    assert_eq!(shown[..3], ["after/2", "after/1", "after/0"]);
    let note = text(&newest.stderr);
    assert!(note.contains("7 more match (12 in all)"), "{note}");
    assert!(
        note.contains("--max-results 12") && note.contains("--all"),
        "{note}"
    );

    let all = node.cli(&["search", "--all", "--json"]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let listed = cli_names(&all.stdout);
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every file, once: {listed:?}");
    assert_eq!(listed.len(), names.len(), "no duplicates: {listed:?}");
    assert_eq!(listed[..3], ["after/2", "after/1", "after/0"]);
    assert_eq!(listed[9..], ["before/2", "before/1", "before/0"]);
    assert!(all.stderr.is_empty(), "{}", text(&all.stderr));

    // More than the node's limit, without --all: paged the same way.
    let many = node.cli(&["search", "--max-results", "20", "--json"]);
    assert_eq!(cli_names(&many.stdout), listed);
    assert!(
        many.stderr.is_empty(),
        "nothing more to say: {}",
        text(&many.stderr)
    );

    let table = node.cli(&["search", "--all"]);
    let rows = text(&table.stdout);
    assert_eq!(rows.lines().count(), 1 + names.len(), "{rows}");
}

#[test]
fn the_cli_warns_when_more_files_share_an_instant_than_the_node_returns() {
    let (node, _) = node_with_a_crowded_instant(4, 1, 6, 1);
    let all = node.cli(&["search", "--all", "--json"]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let listed = cli_names(&all.stdout);
    let unique: std::collections::HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no duplicates: {listed:?}");
    assert_eq!(listed.first().map(String::as_str), Some("after/0"));
    assert_eq!(listed.last().map(String::as_str), Some("before/0"));
    let warning = text(&all.stderr);
    assert!(
        warning.contains("may be missing") && warning.contains("max_search_results"),
        "{warning}"
    );
}

#[test]
fn a_copy_whose_bytes_are_gone_is_shown_unavailable_and_recorded() {
    let node = TestNode::start();
    node.upload("gone/with/its/directory.dat", b"soon gone");
    node.upload("kept.dat", b"kept");
    let found = node.file_record("gone/with/its/directory.dat");
    assert_eq!(found["instances"][0]["available"], true, "{found}");
    // Removed with the directory above it, as a deletion of that directory would.
    std::fs::remove_dir_all(node.store_root().join("gone")).unwrap();
    let found = node.file_record("gone/with/its/directory.dat");
    assert_eq!(found["instances"][0]["available"], false, "{found}");
    assert_eq!(
        node.file_record("kept.dat")["instances"][0]["available"],
        true
    );
    // Recorded as the integrity checks record a missing copy, once.
    node.file_record("gone/with/its/directory.dat");
    let (status, errors) = node.post_admin("search/error", json!({}));
    assert_eq!(status, 200, "{errors}");
    let about: Vec<&Value> = errors
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["message"].as_str().unwrap().contains("directory.dat"))
        .collect();
    assert_eq!(about.len(), 1, "{errors}");
    assert_eq!(about[0]["category"], "data_integrity", "{errors}");
    // And validate answers from the disk, not from an earlier hash.
    let (status, rows) = node.post_admin(
        "validate/file",
        json!({"file_name": "gone/with/its/directory.dat"}),
    );
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows}");
    assert_eq!(rows[0]["cached"], false, "{rows}");
}
