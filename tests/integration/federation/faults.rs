//! Faults of the send path: a destination that is down, a destination killed in
//! the middle of a large file, a source copy that changed, a peer disabled in
//! the middle of a run, a name taken at the destination by other bytes.

use serde_json::json;

use super::*;
use crate::sneakernet::{COMPLETED, FAILED};
use crate::support::flip_first_byte;

/// Sender settings that retry a failed batch at once, and give up after one retry.
const QUICK_RETRY: &str = "max_async_send_retries = 1\nsend_retry_backoff = \"0s\"\n";

fn error_messages(node: &TestNode) -> Vec<String> {
    let (status, found) = node.post_admin("search/error", json!({"max_results": 1000}));
    assert_eq!(status, 200, "{found}");
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn statuses(node: &TestNode, peer: &str) -> Vec<i64> {
    transfers_json(node, &[peer])["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_i64().unwrap())
        .collect()
}

#[test]
fn a_destination_that_is_down_is_retried_then_failed_with_a_reason_and_nothing_is_lost() {
    let a = site(
        "site-a",
        &format!("{QUICK_RETRY}{}", sender_tasks("site-b", "")),
    );
    let mut b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "down", 3, 20_000);
    assert_eq!(a.run_task("send")["items_done"], 1);
    b.kill();
    let first = a.run_task("consume");
    assert_eq!(first["errors"], 1, "{first}");
    let summary = transfers_json(&a, &[]);
    let peer = &summary["peers"][0];
    assert_eq!(
        peer["queued"]["files"], 3,
        "still queued after one failure: {summary}"
    );
    assert!(
        peer["last_failure"].as_str().unwrap().contains("attempt 1"),
        "{summary}"
    );
    let second = a.run_task("consume");
    assert_eq!(second["errors"], 1, "{second}");
    assert_eq!(statuses(&a, "site-b"), vec![FAILED; 3]);
    let listed = transfers_json(&a, &["site-b"]);
    let why = listed["transfers"][0]["failure"].as_str().unwrap();
    assert!(why.contains("gave up after 2 attempts"), "{listed}");
    assert!(
        error_messages(&a)
            .iter()
            .any(|m| m.contains("3 outgoing transfer(s) to site-b failed")),
        "the failure is in search/error"
    );

    // B comes back: the files are offered again, and arrive exactly once.
    b.start_again_at_same_address();
    for _ in 0..2 {
        send_round(&a, &b);
    }
    for (name, bytes) in &files {
        assert_eq!(&stored_bytes(&b, name), bytes);
        assert_eq!(remote_copies(&a, name), vec!["site-b".to_string()]);
    }
    let completed = statuses(&a, "site-b")
        .into_iter()
        .filter(|s| *s == COMPLETED)
        .count();
    assert_eq!(completed, 3, "each file completed once");
}

#[test]
fn a_destination_killed_in_the_middle_of_a_large_file_resumes_from_what_it_holds() {
    let size: usize = std::env::var("QUIRE_RESUME_TEST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48 << 20);
    let a = site(
        "site-a",
        &format!(
            "send_retry_backoff = \"0s\"\n{}",
            sender_tasks("site-b", "")
        ),
    );
    let mut b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    // Slow enough to be killed half-way: the whole file takes about 3 s.
    let rate = (size / 3).to_string();
    success(&a.cli(&["librarians", "max-rate", "site-b", &rate]));
    let files = upload_files(&a, "big", 1, size);
    assert_eq!(a.run_task("send")["items_done"], 1);
    let consumer = {
        let (url, password) = (a.base.clone(), a.admin_password.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(300))
                .build()
                .unwrap();
            let reply: Value = client
                .post(format!("{url}/api/v2/admin/tasks/run"))
                .basic_auth("admin", Some(password))
                .json(&json!({"task_name": "consume", "wait": true}))
                .send()
                .unwrap()
                .json()
                .unwrap();
            reply
        })
    };
    // Wait until B holds part of the file, then kill it.
    let staging = b.data_dir.join("store");
    let held_before_kill = wait_for_partial(&b, &staging, size);
    b.kill();
    let held_after_kill = staged_length(&staging);
    b.start_again_at_same_address();
    let consumed = consumer.join().unwrap();
    assert_eq!(consumed["report"]["items_done"], 1, "{consumed}");
    a.run_task("check");
    b.run_task("receive");
    let (name, bytes) = &files[0];
    assert_eq!(&stored_bytes(&b, name), bytes);
    assert_eq!(remote_copies(&a, name), vec!["site-b".to_string()]);
    // Count on B what arrived after the restart: with what B held when it was
    // killed, that is the file plus the bytes sent twice.
    let log = b.log();
    let restarted = log.rfind("start-up recovery done").expect("B restarted");
    let after_restart: u64 = log[restarted..]
        .lines()
        .filter(|line| line.contains("stream received"))
        .filter_map(|line| field(line, "received"))
        .sum();
    let resent = (held_after_kill + after_restart).saturating_sub(size as u64);
    eprintln!(
        "resume: {size} bytes; B held {held_after_kill} when killed, received {after_restart} \
         after its restart: {resent} sent twice"
    );
    assert!(held_before_kill > 0 && held_after_kill < size as u64);
    assert!(
        resent * 10 < size as u64,
        "{resent} of {size} bytes were sent twice (B held {held_after_kill} when killed, \
         received {after_restart} after)"
    );
}

/// Waits until some staged file under `root` holds part of `size` bytes.
fn wait_for_partial(node: &TestNode, root: &std::path::Path, size: usize) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let held = staged_length(root);
        if held > (size / 4) as u64 {
            return held;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing arrived at B: {}",
            node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The largest regular file under `root` (the staged file of the one transfer).
fn staged_length(root: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
        .unwrap_or(0)
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn a_source_copy_that_changed_is_not_sent_and_is_recorded_corrupt() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "rot", 3, 10_000);
    assert_eq!(a.run_task("send")["items_done"], 1);
    flip_first_byte(&a.store_root().join(&files[1].0));
    let consumed = a.run_task("consume");
    assert_eq!(consumed["errors"], 1, "{consumed}");
    a.run_task("check");
    b.run_task("receive");
    assert_eq!(stored_bytes(&b, &files[0].0), files[0].1);
    assert_eq!(stored_bytes(&b, &files[2].0), files[2].1);
    let (status, _) = b.search_name(&files[1].0);
    assert_eq!(status, 404, "the changed file never reaches B");
    let listed = transfers_json(&a, &["site-b"]);
    let failed: Vec<&Value> = listed["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == FAILED)
        .collect();
    assert_eq!(failed.len(), 1, "{listed}");
    assert!(
        failed[0]["failure"]
            .as_str()
            .unwrap()
            .contains("no longer matches its record"),
        "{listed}"
    );
    let (status, corrupt) = a.post_admin("validate/file", json!({"file_name": files[1].0}));
    assert_eq!(status, 200, "{corrupt}");
    assert!(
        error_messages(&a).iter().any(|m| m.contains(&files[1].0)),
        "the corruption is an error at A"
    );
    assert_eq!(corrupt[0]["computed_same_checksum"], false, "{corrupt}");
}

#[test]
fn a_disabled_peer_gets_nothing_until_enabled_and_then_the_backlog_drains() {
    let a = site(
        "site-a",
        &sender_tasks("site-b", "warn_disabled_timer = \"0s\"\n"),
    );
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let early = upload_files(&a, "early", 2, 5_000);
    assert_eq!(a.run_task("send")["items_done"], 1, "a batch is queued");
    success(&a.cli(&["librarians", "transfers", "site-b", "disable"]));
    let late = upload_files(&a, "late", 2, 5_000);
    for _ in 0..2 {
        let [sent, consumed, checked, _] = send_round(&a, &b);
        assert_eq!(sent["items_done"], 0, "{sent}");
        assert_eq!(consumed["items_done"], 0, "{consumed}");
        assert_eq!(checked["items_done"], 0, "{checked}");
    }
    for (name, _) in early.iter().chain(&late) {
        assert!(
            stored_bytes(&b, name).is_empty(),
            "{name} moved while disabled"
        );
    }
    let warnings = error_messages(&a)
        .into_iter()
        .filter(|m| m.contains("have been disabled for longer"))
        .count();
    assert_eq!(warnings, 1, "one warning, however many runs");
    success(&a.cli(&["librarians", "transfers", "site-b", "enable"]));
    send_round(&a, &b);
    for (name, bytes) in early.iter().chain(&late) {
        assert_eq!(&stored_bytes(&b, name), bytes, "{name}");
        assert_eq!(remote_copies(&a, name), vec!["site-b".to_string()]);
    }
}

#[test]
fn a_name_taken_at_the_destination_by_other_bytes_fails_alone_and_the_rest_go_on() {
    let a = site("site-a", &sender_tasks("site-b", ""));
    let b = site("site-b", "");
    connect(&a, "site-a", &b, "site-b");
    let files = upload_files(&a, "clash", 3, 4_000);
    b.upload(&files[1].0, b"other bytes under the same name");
    let first = a.run_task("send");
    assert!(first["errors"].as_u64().unwrap() >= 1, "{first}");
    send_round(&a, &b);
    assert_eq!(stored_bytes(&b, &files[0].0), files[0].1);
    assert_eq!(stored_bytes(&b, &files[2].0), files[2].1);
    assert_eq!(
        stored_bytes(&b, &files[1].0),
        b"other bytes under the same name"
    );
    assert!(remote_copies(&a, &files[1].0).is_empty());
    let listed = transfers_json(&a, &["site-b"]);
    let conflicts = listed["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{listed}");
    assert_eq!(conflicts[0]["file_name"], files[1].0.as_str());
    assert!(
        conflicts[0]["reason"]
            .as_str()
            .unwrap()
            .contains("other bytes"),
        "{listed}"
    );
    // Not offered again.
    assert_eq!(a.run_task("send")["items_done"], 0);
}
