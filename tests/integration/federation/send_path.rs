//! The send path between two quire nodes with `quire_http`.

use super::*;
use crate::sneakernet::COMPLETED;

#[test]
fn files_uploaded_at_a_reach_b_and_a_records_b_s_copies() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "night1", 5, 100_000);
    let [sent, consumed, checked, received] = send_round(&a, &b);
    assert_eq!(sent["items_done"], 1, "one batch queued: {sent}");
    assert_eq!(consumed["items_done"], 1, "one batch moved: {consumed}");
    assert_eq!(checked["items_done"], 1, "one batch reported: {checked}");
    assert_eq!(received["errors"], 0, "{received}");
    for (name, bytes) in &files {
        assert_eq!(&stored_bytes(&b, name), bytes, "{name} at B");
        assert_eq!(b.file_record(name)["source"], "site-a");
        assert_eq!(remote_copies(&a, name), vec!["site-b".to_string()]);
    }
    // Nothing is offered twice.
    let again = a.run_task("send");
    assert_eq!(again["items_done"], 0, "{again}");

    let summary = transfers_json(&a, &[]);
    let peer = &summary["peers"][0];
    assert_eq!(peer["librarian_name"], "site-b", "{summary}");
    assert_eq!(peer["completed"]["files"], 5, "{summary}");
    assert_eq!(peer["completed"]["bytes"], 500_000, "{summary}");
    let listed = transfers_json(&a, &["site-b"]);
    let transfers = listed["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 5, "{listed}");
    assert!(
        transfers.iter().all(|t| t["status"] == COMPLETED),
        "{listed}"
    );
}
