//! `create_local_clone`: filling SneakerNet drives with verified copies, one run at
//! a time (runs are triggered by the test), full drives, unplugged drives, several
//! targets, and what an interrupted copy leaves behind.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::node::TestNode;
use crate::tasks::{run_task, wait_for_first_run};

/// A directory outside the node's data directory that holds its drives.
struct Drives {
    _dir: TempDir,
    root: PathBuf,
}

impl Drives {
    fn new() -> Drives {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        Drives { _dir: dir, root }
    }

    /// The mount point of drive `name`, created (plugged in) or not.
    fn path(&self, name: &str, plugged_in: bool) -> PathBuf {
        let path = self.root.join(name);
        if plugged_in {
            fs::create_dir_all(&path).unwrap();
        }
        path
    }
}

/// A `[[stores]]` table for a drive.
fn drive_store(name: &str, path: &Path, full_fraction: f64) -> String {
    format!(
        "[[stores]]\nname = \"{name}\"\npath = \"{}\"\ningestable = false\n\
         report_full_fraction = {full_fraction}\n",
        path.display()
    )
}

/// A node with the store `main` and `drives`, and a task `fill` cloning `main` to
/// `clone_to` (a TOML value) that runs at start-up (awaited here, so it has nothing
/// to copy) and then only when asked.
fn node_with(drives: &[String], clone_to: &str, extra: &str) -> TestNode {
    let node = TestNode::with_config(&format!(
        "[[stores]]\nname = \"main\"\npath = \"store\"\n{}\
         [[tasks.create_local_clone]]\ntask_name = \"fill\"\nevery = \"1h\"\n\
         clone_from = \"main\"\nclone_to = {clone_to}\nage_in_days = 7\n{extra}",
        drives.concat()
    ));
    wait_for_first_run(&node);
    node
}

fn contents(name: &str) -> Vec<u8> {
    format!("the bytes of {name} ").repeat(500).into_bytes()
}

/// Uploads `names` to `main`.
fn upload_all(node: &TestNode, names: &[&str]) {
    for name in names {
        node.upload(name, &contents(name));
    }
}

/// The instances of `name` as `search/file` reports them.
fn instances_of(node: &TestNode, name: &str) -> Vec<Value> {
    node.file_record(name)["instances"]
        .as_array()
        .unwrap()
        .clone()
}

/// The instance of `name` under `root`, if any.
fn instance_under(node: &TestNode, name: &str, root: &Path) -> Option<Value> {
    instances_of(node, name)
        .into_iter()
        .find(|i| Path::new(i["path"].as_str().unwrap()).starts_with(root))
}

fn store_named(node: &TestNode, name: &str) -> Value {
    let (status, stores) = node.post_admin("admin/stores/list", json!({}));
    assert_eq!(status, 200, "{stores}");
    stores
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

fn errors_of(node: &TestNode, category: &str) -> Vec<Value> {
    let (status, found) = node.post_admin("search/error", json!({"category": category}));
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{found}");
    found.as_array().cloned().unwrap_or_default()
}

/// Names of the entries of a drive's staging directory.
fn staging_entries(drive: &Path) -> Vec<String> {
    match fs::read_dir(drive.join(".quire-staging")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_drive_is_filled_in_runs_of_files_per_run_with_verified_recorded_copies() {
    let drives = Drives::new();
    let drive = drives.path("drive", true);
    let node = node_with(
        &[drive_store("drive", &drive, 1.0)],
        "\"drive\"",
        "files_per_run = 2\n",
    );
    let names = [
        "obs/1/a.dat",
        "obs/1/b.dat",
        "obs/2/c.dat",
        "d.dat",
        "e.dat",
    ];
    upload_all(&node, &names);

    let mut copied_per_run = Vec::new();
    for _ in 0..4 {
        let report = run_task(&node, "fill");
        assert_eq!(report["outcome"], "completed", "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        copied_per_run.push(report["items_done"].as_u64().unwrap());
    }
    assert_eq!(copied_per_run, [2, 2, 1, 0], "nothing is copied twice");

    for name in names {
        let on_drive = drive.join(name);
        assert_eq!(fs::read(&on_drive).unwrap(), contents(name), "{name}");
        let instance = instance_under(&node, name, &drive).expect("an instance on the drive");
        assert_eq!(instance["path"], on_drive.display().to_string());
        assert_eq!(instance["available"], true);
        assert_eq!(instances_of(&node, name).len(), 2, "main and drive");
    }
    assert!(staging_entries(&drive).is_empty(), "staging is cleaned up");
    let validated = node.post_admin("validate/file", json!({"file_name": "d.dat"}));
    assert_eq!(validated.0, 200, "{validated:?}");
    let rows = validated.1.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["computed_same_checksum"] == true));
}

#[test]
fn a_full_drive_receives_nothing_and_is_disabled_when_configured() {
    let drives = Drives::new();
    let kept = drives.path("kept", true);
    let node = node_with(&[drive_store("kept", &kept, 0.0001)], "\"kept\"", "");
    upload_all(&node, &["x.dat", "y.dat"]);
    let report = run_task(&node, "fill");
    assert_eq!(report["items_done"], 0, "{report}");
    assert_eq!(report["errors"], 1, "one report for the run: {report}");
    assert!(
        report["last_error"].as_str().unwrap().contains("no target"),
        "{report}"
    );
    assert!(!kept.join("x.dat").exists());
    assert_eq!(
        store_named(&node, "kept")["enabled"],
        true,
        "not configured to disable"
    );

    let drives = Drives::new();
    let full = drives.path("full", true);
    let mut node = node_with(
        &[drive_store("full", &full, 0.0001)],
        "\"full\"",
        "disable_store_on_full = true\n",
    );
    upload_all(&node, &["x.dat"]);
    run_task(&node, "fill");
    assert!(!full.join("x.dat").exists());
    assert_eq!(store_named(&node, "full")["enabled"], false);
    let reported = errors_of(&node, "store_full");
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0]["message"].as_str().unwrap().contains("full"));
    let quiet = run_task(&node, "fill");
    assert_eq!(
        quiet["errors"], 0,
        "a disabled drive is simply skipped: {quiet}"
    );
    assert_eq!(errors_of(&node, "store_full").len(), 1);
    node.restart();
    assert_eq!(
        store_named(&node, "full")["enabled"],
        false,
        "disabling is persisted"
    );
}

#[test]
fn an_unplugged_drive_is_away_once_and_back_again_without_losing_a_file() {
    let drives = Drives::new();
    let drive = drives.path("drive", true);
    let node = node_with(&[drive_store("drive", &drive, 1.0)], "\"drive\"", "");
    upload_all(&node, &["before/a.dat", "before/b.dat"]);
    assert_eq!(run_task(&node, "fill")["items_done"], 2);

    let unplugged = drives.root.join("in-a-drawer");
    fs::rename(&drive, &unplugged).unwrap();
    assert_eq!(store_named(&node, "drive")["available"], false);
    let away = instance_under(&node, "before/a.dat", &drive).unwrap();
    assert_eq!(
        away["available"], false,
        "copies on an unplugged drive are away"
    );
    let (status, rows) = node.post_admin("validate/file", json!({"file_name": "before/a.dat"}));
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "only the copy on main is hashed"
    );

    upload_all(&node, &["during/c.dat", "during/d.dat", "during/e.dat"]);
    for _ in 0..3 {
        let report = run_task(&node, "fill");
        assert_eq!(report["items_done"], 0, "{report}");
        assert_eq!(report["errors"], 0, "no error per file: {report}");
    }
    let outage = errors_of(&node, "data_availability");
    assert_eq!(outage.len(), 1, "one record per outage: {outage:?}");
    assert!(outage[0]["message"].as_str().unwrap().contains("drive"));
    assert!(
        errors_of(&node, "data_integrity").is_empty(),
        "away is not corrupt"
    );

    // Plugged back in, having lost its staging directory meanwhile.
    fs::remove_dir_all(unplugged.join(".quire-staging")).unwrap();
    fs::rename(&unplugged, &drive).unwrap();
    assert_eq!(store_named(&node, "drive")["available"], true);
    let report = run_task(&node, "fill");
    assert_eq!(report["items_done"], 3, "{report}");
    assert!(
        errors_of(&node, "data_availability").is_empty(),
        "the outage is cleared"
    );
    for name in [
        "before/a.dat",
        "before/b.dat",
        "during/c.dat",
        "during/d.dat",
        "during/e.dat",
    ] {
        assert_eq!(
            fs::read(drive.join(name)).unwrap(),
            contents(name),
            "{name}"
        );
        assert_eq!(
            fs::read(node.store_root().join(name)).unwrap(),
            contents(name)
        );
        let instance = instance_under(&node, name, &drive).unwrap();
        assert_eq!(instance["available"], true, "{name}");
    }
}

#[test]
fn files_go_to_the_first_target_with_room_in_configured_order() {
    let drives = Drives::new();
    let full = drives.path("full", true);
    let absent = drives.path("absent", false);
    let roomy = drives.path("roomy", true);
    let node = node_with(
        &[
            drive_store("full", &full, 0.0001),
            drive_store("absent", &absent, 1.0),
            drive_store("roomy", &roomy, 1.0),
            drive_store("spare", &drives.path("spare", true), 1.0),
        ],
        "[\"full\", \"absent\", \"roomy\", \"spare\"]",
        "disable_store_on_full = true\n",
    );
    upload_all(&node, &["p.dat", "q.dat"]);
    let report = run_task(&node, "fill");
    assert_eq!(report["items_done"], 2, "{report}");
    for name in ["p.dat", "q.dat"] {
        assert_eq!(fs::read(roomy.join(name)).unwrap(), contents(name));
        assert!(!drives.root.join("spare").join(name).exists());
        assert_eq!(
            instances_of(&node, name).len(),
            2,
            "one copy across the targets"
        );
    }
    assert_eq!(store_named(&node, "full")["enabled"], false);

    // A fresh drive plugged in where the absent one was configured takes new files
    // once it comes first in line.
    fs::create_dir(&absent).unwrap();
    upload_all(&node, &["r.dat"]);
    assert_eq!(run_task(&node, "fill")["items_done"], 1);
    assert_eq!(fs::read(absent.join("r.dat")).unwrap(), contents("r.dat"));
    assert_eq!(
        instances_of(&node, "p.dat").len(),
        2,
        "p.dat is on a target already"
    );
}

#[test]
fn interrupted_copies_leave_no_record_and_their_bytes_are_adopted_or_left_alone() {
    let drives = Drives::new();
    let drive = drives.path("drive", true);
    let mut node = node_with(&[drive_store("drive", &drive, 1.0)], "\"drive\"", "");
    upload_all(&node, &["renamed.dat", "foreign.dat", "fresh.dat"]);
    node.stop();
    // A copy killed while writing into staging, one killed after its rename into
    // place but before its record, and a stranger's file under a name we want.
    let partial = drive.join(".quire-staging/0b7e-interrupted");
    fs::create_dir_all(&partial).unwrap();
    fs::write(partial.join("fresh.dat"), b"half of it").unwrap();
    fs::write(drive.join("renamed.dat"), contents("renamed.dat")).unwrap();
    fs::write(drive.join("foreign.dat"), b"not ours").unwrap();
    node.start_again();
    // Recovery ran before the start-up run of `fill`, which does the work.
    let report = wait_for_first_run(&node)["last_run"].clone();
    assert!(
        staging_entries(&drive).is_empty(),
        "recovery removes clone staging"
    );
    assert_eq!(report["items_done"], 2, "{report}");
    assert_eq!(report["errors"], 1, "{report}");
    assert!(
        report["last_error"]
            .as_str()
            .unwrap()
            .contains("foreign.dat"),
        "{report}"
    );
    assert_eq!(fs::read(drive.join("foreign.dat")).unwrap(), b"not ours");
    assert!(instance_under(&node, "foreign.dat", &drive).is_none());
    for name in ["renamed.dat", "fresh.dat"] {
        assert_eq!(fs::read(drive.join(name)).unwrap(), contents(name));
        assert!(instance_under(&node, name, &drive).is_some(), "{name}");
    }
}
