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

#[test]
fn hosts_that_share_a_filesystem_clone_with_the_local_provider() {
    // A may write into B's staging anywhere on the filesystem they share.
    let a = super::site_on(
        "site-a",
        "shared-host",
        &format!("local_send_roots = [\"/\"]\n{}", sender_tasks("site-b", "")),
    );
    let b = super::site_on("site-b", "shared-host", "");
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "local", 3, 50_000);
    send_round(&a, &b);
    for (name, bytes) in &files {
        assert_eq!(&stored_bytes(&b, name), bytes, "{name} at B");
        assert_eq!(remote_copies(&a, name), vec!["site-b".to_string()]);
    }
    let listed = transfers_json(&a, &["site-b"]);
    for transfer in listed["transfers"].as_array().unwrap() {
        assert_eq!(transfer["provider"], "local", "{listed}");
        assert_eq!(transfer["status"], COMPLETED, "{listed}");
    }
}

#[test]
fn a_peer_s_rate_cap_is_set_shown_and_lifted() {
    let a = site("site-a", "");
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    success(&a.cli(&["librarians", "max-rate", "site-b", "6MB/s"]));
    let listed: Value =
        serde_json::from_str(&success(&a.cli(&["librarians", "list", "--json"]))).unwrap();
    assert_eq!(listed["librarians"][0]["max_rate"], 6_000_000, "{listed}");
    let table = success(&a.cli(&["librarians"]));
    assert!(table.contains("6.0 MB/s"), "{table}");
    success(&a.cli(&["librarians", "max-rate", "site-b", "none"]));
    let listed: Value =
        serde_json::from_str(&success(&a.cli(&["librarians", "list", "--json"]))).unwrap();
    assert!(listed["librarians"][0]["max_rate"].is_null(), "{listed}");
    let unknown = a.cli(&["librarians", "max-rate", "site-z", "1MB/s"]);
    assert!(!unknown.status.success());
    let bad = a.cli(&["librarians", "max-rate", "site-b", "fast"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad rate is a command-line error"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("6MB/s"));
}
