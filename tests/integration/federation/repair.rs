//! Corruption repair between two quire nodes: B's copy rots; B's
//! `corruption_fixer` asks A (`corrupt/prepare`, `corrupt/resend`), A sends the
//! file again, and B ends with a good copy and no corrupt record.

use serde_json::json;

use super::*;
use crate::support::flip_first_byte;

/// B's receiving side, with a corruption fixer.
const FIXER: &str = "[[tasks.corruption_fixer]]\ntask_name = \"fix\"\nevery = \"1h\"\n";

fn validate_fresh(node: &TestNode, name: &str) -> Value {
    let (status, rows) =
        node.post_admin("validate/file", json!({"file_name": name, "fresh": true}));
    assert_eq!(status, 200, "{rows}");
    rows
}

#[test]
fn a_copy_found_corrupt_downstream_is_replaced_from_upstream() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", FIXER);
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "repair", 2, 30_000);
    send_round(&a, &b);
    let (name, bytes) = &files[0];
    flip_first_byte(&b.store_root().join(name));
    let rows = validate_fresh(&b, name);
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows}");

    let fixed = b.run_task("fix");
    assert_eq!(fixed["items_done"], 1, "a new copy was asked for: {fixed}");
    assert_eq!(fixed["errors"], 0, "{fixed}");
    let (status, _) = b.search_name(name);
    assert_eq!(
        status, 404,
        "B forgot its corrupt copy while the new one travels"
    );
    // A sends the file again through its queue; B stores it.
    a.run_task("consume");
    a.run_task("check");
    b.run_task("receive");
    assert_eq!(&stored_bytes(&b, name), bytes);
    let rows = validate_fresh(&b, name);
    assert_eq!(rows[0]["computed_same_checksum"], true, "{rows}");
    let closed = b.run_task("fix");
    assert_eq!(closed["items_done"], 1, "the repair is closed: {closed}");
    assert_eq!(b.run_task("fix")["items_done"], 0, "nothing left to repair");
    assert_eq!(remote_copies(&a, name), vec!["site-b".to_string()]);
    // The other file was never touched.
    assert_eq!(stored_bytes(&b, &files[1].0), files[1].1);
}

#[test]
fn an_upstream_whose_copy_is_corrupt_too_refuses_and_the_downstream_keeps_its_record() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", FIXER);
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "both", 1, 20_000);
    send_round(&a, &b);
    let (name, _) = &files[0];
    flip_first_byte(&b.store_root().join(name));
    flip_first_byte(&a.store_root().join(name));
    validate_fresh(&b, name);
    let fixed = b.run_task("fix");
    assert_eq!(fixed["errors"], 1, "{fixed}");
    assert!(
        fixed["last_error"]
            .as_str()
            .unwrap()
            .contains("Our copy of the file is also corrupt"),
        "{fixed}"
    );
    let (status, _) = b.search_name(name);
    assert_eq!(status, 200, "B keeps its record until a good copy can come");
    // A now knows its own copy is corrupt.
    let rows = validate_fresh(&a, name);
    assert_eq!(rows[0]["computed_same_checksum"], false, "{rows}");
}

#[test]
fn corrupt_routes_refuse_a_caller_that_is_not_the_librarian_it_names() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "who", 1, 1_000);
    send_round(&a, &b);
    a.create_user("intruder", "intruder-pw", 2);
    for route in ["corrupt/prepare", "corrupt/resend"] {
        let (status, reply) = a.post(
            route,
            json!({"file_name": files[0].0, "librarian_name": "site-b"}),
            "intruder",
            "intruder-pw",
        );
        assert_eq!(status, 401, "{route}: {reply}");
        assert_eq!(reply["detail"]["reason"], "Unauthorized", "{reply}");
    }
    let (status, reply) = a.post(
        "corrupt/prepare",
        json!({"file_name": "no/such.file", "librarian_name": "site-b"}),
        "site-b",
        "site-b-callback",
    );
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("do not have a copy")
    );
}

#[test]
fn a_peer_cannot_pull_a_file_that_was_never_sent_to_it() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let sent = upload_files(&a, "sent", 1, 1_000);
    send_round(&a, &b);
    let kept = upload_files(&a, "kept", 1, 1_000);
    for (name, status) in [(&sent[0].0, 200), (&kept[0].0, 401)] {
        let (answer, reply) = b_asks(&a, "corrupt/prepare", name);
        assert_eq!(answer, status, "{name}: {reply}");
    }
    let (status, reply) = b_asks(&a, "corrupt/resend", &kept[0].0);
    assert_eq!(status, 401, "{reply}");
    assert!(stored_bytes(&b, &kept[0].0).is_empty(), "nothing was sent");
}

/// `route` at A as site-b (its callback account there) about `file`.
fn b_asks(a: &TestNode, route: &str, file: &str) -> (u16, Value) {
    a.post(
        route,
        json!({"file_name": file, "librarian_name": "site-b"}),
        "site-b",
        "site-b-callback",
    )
}
