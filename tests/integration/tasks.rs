//! The scheduler and `check_integrity`: tasks from TOML and from a Librarian
//! background file, start-up runs, on-demand runs with their reports, soft timeouts,
//! `quire tasks`, and integrity findings reported through `search/error`.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::{TestNode, quire_command};

/// A node whose default store is checked by a task that only runs at start-up and on
/// demand; `checksum_timeout = 0` so every run re-hashes.
fn node_with_integrity_task(extra: &str) -> TestNode {
    TestNode::with_config(&format!(
        "checksum_timeout = 0\n\
         [[tasks.check_integrity]]\n\
         task_name = \"integrity\"\n\
         every = \"1h\"\n\
         store_name = \"main\"\n\
         age_in_days = 7\n{extra}"
    ))
}

/// Runs `task` now and returns its report.
pub fn run_task(node: &TestNode, task: &str) -> Value {
    let (status, reply) =
        node.post_admin("admin/tasks/run", json!({"task_name": task, "wait": true}));
    assert_eq!(status, 200, "admin/tasks/run {task}: {reply}");
    assert_eq!(reply["task_name"], task);
    reply["report"].clone()
}

/// Waits until the start-up run of the node's first task has finished.
pub fn wait_for_first_run(node: &TestNode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, listing) = node.post_admin("admin/tasks/list", json!({}));
        assert_eq!(status, 200, "{listing}");
        if !listing["tasks"][0]["last_run"].is_null() {
            return listing["tasks"][0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the start-up run never finished: {listing}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn integrity_errors(node: &TestNode) -> Vec<Value> {
    let (status, found) = node.post_admin("search/error", json!({"category": "data_integrity"}));
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{found}");
    found.as_array().cloned().unwrap_or_default()
}

#[test]
fn check_integrity_finds_a_flipped_byte_and_a_deleted_file() {
    let node = node_with_integrity_task("");
    for name in ["obs/a.dat", "obs/b.dat", "obs/c.dat"] {
        node.upload(name, format!("contents of {name}").as_bytes());
    }
    let clean = run_task(&node, "integrity");
    assert_eq!(clean["outcome"], "completed", "{clean}");
    assert_eq!(clean["items_done"], 3, "{clean}");
    assert_eq!(clean["errors"], 0, "{clean}");
    assert!(integrity_errors(&node).is_empty());

    crate::support::flip_first_byte(&node.store_root().join("obs/a.dat"));
    fs::remove_file(node.store_root().join("obs/b.dat")).unwrap();
    let report = run_task(&node, "integrity");
    assert_eq!(report["items_done"], 1, "{report}");
    assert_eq!(report["errors"], 2, "{report}");
    let errors = integrity_errors(&node);
    assert_eq!(errors.len(), 2, "{errors:?}");
    let messages: Vec<&str> = errors
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("obs/a.dat") && m.contains("does not match")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("obs/b.dat") && m.contains("unreadable")),
        "{messages:?}"
    );
    assert!(
        errors.iter().all(|e| e["caller"] == "task integrity"),
        "{errors:?}"
    );

    // A second run finds the same damage without raising the errors again.
    let again = run_task(&node, "integrity");
    assert_eq!(again["errors"], 2, "{again}");
    assert_eq!(integrity_errors(&node).len(), 2);
}

#[test]
fn instances_older_than_age_in_days_are_not_checked() {
    let node = TestNode::with_config(
        "checksum_timeout = 0\n[[tasks.check_integrity]]\ntask_name = \"integrity\"\n\
         every = 3600\nstore_name = \"main\"\nage_in_days = 0\n",
    );
    node.upload("old.dat", b"old enough");
    crate::support::flip_first_byte(&node.store_root().join("old.dat"));
    let report = run_task(&node, "integrity");
    assert_eq!(report["items_done"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn every_task_runs_at_start_up_and_lists_its_next_run() {
    let node = node_with_integrity_task("");
    let task = wait_for_first_run(&node);
    assert_eq!(task["task_name"], "integrity");
    assert_eq!(task["task_type"], "check_integrity");
    assert_eq!(task["every_seconds"], 3600.0);
    assert_eq!(task["last_run"]["outcome"], "completed", "{task}");
    assert!(task["last_run"]["started"].is_string(), "{task}");
    assert!(task["last_run"]["duration_seconds"].is_number(), "{task}");
    assert!(task["next_run"].is_string(), "{task}");
}

#[test]
fn a_soft_timeout_stops_the_run_between_items() {
    let node = node_with_integrity_task("soft_timeout = 0\n");
    node.upload("x.dat", b"x");
    let report = run_task(&node, "integrity");
    assert_eq!(report["outcome"], "soft timeout reached", "{report}");
    assert_eq!(report["items_done"], 0, "{report}");
}

#[test]
fn an_unavailable_store_fails_the_run_without_reporting_corruption() {
    let drive = tempfile::tempdir().unwrap();
    let drive_path = drive.path().join("drive");
    fs::create_dir(&drive_path).unwrap();
    let node = TestNode::with_config(&format!(
        "checksum_timeout = 0\n\
         [[stores]]\nname = \"main\"\npath = \"store\"\n\
         [[stores]]\nname = \"drive\"\npath = \"{}\"\ningestable = false\n\
         [[tasks.check_integrity]]\ntask_name = \"drive-check\"\nevery = \"1h\"\n\
         store_name = \"drive\"\nage_in_days = 7\n",
        drive_path.display()
    ));
    fs::remove_dir_all(&drive_path).unwrap();
    let report = run_task(&node, "drive-check");
    let outcome = report["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("failed") && outcome.contains("unavailable"),
        "{report}"
    );
    assert!(integrity_errors(&node).is_empty());
}

#[test]
fn running_an_unknown_task_is_400_and_needs_admin() {
    let node = node_with_integrity_task("");
    let (status, reply) = node.post_admin("admin/tasks/run", json!({"task_name": "nope"}));
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("nope"),
        "{reply}"
    );
    node.create_user("writer", "writer-password", 4);
    let (status, _) = node.post("admin/tasks/list", json!({}), "writer", "writer-password");
    assert_eq!(status, 401);
    let (status, _) = node.post(
        "admin/tasks/run",
        json!({"task_name": "integrity"}),
        "writer",
        "writer-password",
    );
    assert_eq!(status, 401);
}

#[test]
fn quire_tasks_lists_and_runs_through_the_api() {
    let node = node_with_integrity_task("");
    node.upload("y.dat", b"y");
    wait_for_first_run(&node);
    let cli = |args: &[&str]| {
        quire_command()
            .args(args)
            .args([
                "--url",
                &node.base,
                "--user",
                "admin",
                "--password",
                &node.admin_password,
            ])
            .output()
            .unwrap()
    };
    let listed = cli(&["tasks"]);
    assert!(listed.status.success(), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("integrity") && text.contains("check_integrity"),
        "{text}"
    );

    let ran = cli(&["tasks", "run", "integrity", "--json"]);
    assert!(ran.status.success(), "{ran:?}");
    let report: Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(report["items_done"], 1, "{report}");

    crate::support::flip_first_byte(&node.store_root().join("y.dat"));
    let failed = cli(&["tasks", "run", "integrity"]);
    assert!(!failed.status.success(), "a run with errors exits non-zero");
    assert!(
        String::from_utf8_lossy(&failed.stdout).contains("1 errors"),
        "{failed:?}"
    );
}

/// Starts `quire serve` with a background file; returns (exited by itself?, stderr).
fn serve_with_background(json_text: &str) -> (bool, String) {
    let (status, stderr, _) = crate::config::serve_until_exit(|command, dir| {
        let background = dir.join("background.json");
        fs::write(&background, json_text).unwrap();
        command.env("LIBRARIAN_BACKGROUND_CONFIG", background);
    });
    (!status.success(), stderr)
}

#[test]
fn a_background_file_with_an_unknown_type_or_field_stops_start_up() {
    let (refused, stderr) =
        serve_with_background(r#"{"defragment": [{"task_name": "d", "every": "00:01:00"}]}"#);
    assert!(refused && stderr.contains("defragment"), "{stderr}");
    let (refused, stderr) = serve_with_background(
        r#"{"check_integrity": [{"task_name": "c", "every": "00:01:00",
            "store_name": "main", "age_in_days": 1, "store": "x"}]}"#,
    );
    assert!(refused && stderr.contains("`store`"), "{stderr}");
    let (refused, stderr) = serve_with_background(
        r#"{"check_integrity": [{"task_name": "c", "every": "00:01:00",
            "store_name": "elsewhere", "age_in_days": 1}]}"#,
    );
    assert!(refused && stderr.contains("elsewhere"), "{stderr}");
}

#[test]
fn tasks_come_from_a_librarian_background_file() {
    let dir = tempfile::tempdir().unwrap();
    let background = dir.path().join("background.json");
    fs::write(
        &background,
        r#"{"check_integrity": [{"task_name": "from-json", "every": "01:00:00",
             "soft_timeout": "00:10:00", "store_name": "main", "age_in_days": 2}],
            "max_rsync_retries": 3}"#,
    )
    .unwrap();
    let node = TestNode::with_config(&format!(
        "background_config = \"{}\"\n",
        background.display()
    ));
    let task = wait_for_first_run(&node);
    assert_eq!(task["task_name"], "from-json");
    assert_eq!(task["soft_timeout_seconds"], 600.0);
}

/// `started` and `duration_seconds` of a run report, as the run's span.
fn span(report: &Value) -> (chrono::NaiveDateTime, chrono::NaiveDateTime) {
    let started = report["started"].as_str().unwrap();
    let started = chrono::NaiveDateTime::parse_from_str(started, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    let took = report["duration_seconds"].as_f64().unwrap();
    (
        started,
        started + chrono::Duration::microseconds((took * 1e6) as i64),
    )
}

#[test]
fn a_task_never_overlaps_itself() {
    let node = node_with_integrity_task("");
    for index in 0..20 {
        node.upload(&format!("f/{index}.dat"), &vec![index as u8; 256 << 10]);
    }
    let start_up = wait_for_first_run(&node)["last_run"]["started"].clone();
    let reports: Vec<Value> = std::thread::scope(|scope| {
        let first = scope.spawn(|| run_task(&node, "integrity"));
        // The first request's run has begun (or even ended): the runs asked for
        // from now on cannot be that one, so at least two runs are compared.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, listing) = node.post_admin("admin/tasks/list", json!({}));
            assert_eq!(status, 200, "{listing}");
            let task = &listing["tasks"][0];
            if !task["running_since"].is_null() || task["last_run"]["started"] != start_up {
                break;
            }
            assert!(Instant::now() < deadline, "the run never began: {listing}");
            std::thread::sleep(Duration::from_millis(5));
        }
        let later: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| run_task(&node, "integrity")))
            .collect();
        let mut reports = vec![first.join().unwrap()];
        reports.extend(later.into_iter().map(|run| run.join().unwrap()));
        reports
    });
    let mut spans: Vec<_> = reports.iter().map(span).collect();
    spans.sort();
    spans.dedup();
    assert!(spans.len() >= 2, "at least two runs: {reports:?}");
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlapped: {reports:?}");
    }
    for report in &reports {
        assert_eq!(report["items_done"], 20, "{report}");
    }
}
