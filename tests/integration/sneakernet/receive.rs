//! The `recieve_clone` task without peers: staged clones are stored or failed,
//! `files_per_run` is honoured, and a callback nobody can take stays owed quietly.

use serde_json::json;

use super::*;

#[test]
fn staged_clones_are_stored_and_damaged_ones_failed() {
    let node = sneakernet_node("site-b", "deletion_policy = \"ALLOWED\"");
    let good = node.clone_to_staged("in/good.dat", b"good bytes", -1);
    let bad = node.clone_stage(clone_stage_body(
        "in/bad.dat",
        b"expected",
        "site-a",
        "i",
        -1,
    ));
    std::fs::write(staging_path(&bad), b"damaged!").unwrap();
    for route in ["clone/ongoing", "clone/staged"] {
        assert_eq!(node.post_admin(route, ids(&bad)).0, 200);
    }

    let report = node.run_task("receive");
    assert_eq!(report["items_done"], 1, "{report}");
    assert_eq!(report["errors"], 1, "{report}");
    assert!(
        report["last_error"]
            .as_str()
            .unwrap()
            .contains("in/bad.dat"),
        "{report}"
    );

    let record = node.file_record("in/good.dat");
    assert_eq!(record["uploader"], "site-a");
    assert_eq!(record["source"], "instrument");
    assert_eq!(record["size"], 10);
    assert_eq!(
        record["instances"][0]["deletion_policy"], 1,
        "the task's policy"
    );
    let stored = node.store_root().join("in/good.dat");
    assert_eq!(std::fs::read(stored).unwrap(), b"good bytes");
    assert_eq!(node.incoming_status(destination_id(&good)), COMPLETED);
    assert!(!staging_path(&good).parent().unwrap().exists());

    assert_eq!(node.search_name("in/bad.dat").0, 404);
    assert_eq!(node.incoming_status(destination_id(&bad)), FAILED);
    assert!(!staging_path(&bad).exists());

    let fail = |staged: &Value| json!({"source_transfer_id": -1, "destination_transfer_id": destination_id(staged), "reason": "r"});
    let (status, refused) = node.post_admin("clone/fail", fail(&good));
    assert_eq!(status, 406, "a stored clone cannot fail: {refused}");
    assert_eq!(node.incoming_status(destination_id(&good)), COMPLETED);
    let (status, _) = node.post_admin("clone/fail", fail(&bad));
    assert_eq!(status, 200, "failing a failed transfer again is harmless");

    let again = node.run_task("receive");
    assert_eq!(
        (again["items_done"].clone(), again["errors"].clone()),
        (json!(0), json!(0))
    );
}

#[test]
fn a_run_stores_at_most_files_per_run() {
    let node = sneakernet_node("site-b", "files_per_run = 2");
    for n in 0..3 {
        node.clone_to_staged(
            &format!("batch/{n}.dat"),
            format!("file {n}").as_bytes(),
            -1,
        );
    }
    assert_eq!(node.run_task("receive")["items_done"], 2);
    assert_eq!(node.run_task("receive")["items_done"], 1);
    for n in 0..3 {
        node.file_record(&format!("batch/{n}.dat"));
    }
}

#[test]
fn a_callback_to_an_unknown_librarian_is_reported_once_and_stays_owed() {
    let node = sneakernet_node("site-b", "");
    node.clone_to_staged("owed.dat", b"owed", 41);
    let first = node.run_task("receive");
    assert_eq!(
        first["items_done"], 1,
        "the file is stored regardless: {first}"
    );
    assert_eq!(first["errors"], 1, "{first}");
    assert!(
        first["last_error"]
            .as_str()
            .unwrap()
            .contains("no known librarian"),
        "{first}"
    );
    node.file_record("owed.dat");
    let second = node.run_task("receive");
    assert_eq!(
        second["errors"], 0,
        "a waiting callback is not reported every run: {second}"
    );
    assert_eq!(second["items_done"], 0);
}

#[test]
fn a_disabled_store_keeps_clones_staged_until_it_is_enabled() {
    let node = sneakernet_node("site-b", "");
    let staged = node.clone_to_staged("later.dat", b"later", -1);
    let (status, _) = node.post_admin(
        "admin/stores/state_change",
        json!({"store_name": "main", "enabled": false}),
    );
    assert_eq!(status, 200);
    let report = node.run_task("receive");
    assert_eq!(report["items_done"], 0);
    assert!(
        report["last_error"].as_str().unwrap().contains("disabled"),
        "{report}"
    );
    assert_eq!(node.incoming_status(destination_id(&staged)), STAGED);
    node.post_admin(
        "admin/stores/state_change",
        json!({"store_name": "main", "enabled": true}),
    );
    assert_eq!(node.run_task("receive")["items_done"], 1);
    node.file_record("later.dat");
}
