//! `rolling_deletion` and `duplicate_remote_instance_hypervisor` between two real
//! nodes: `site-a` holds the files and runs the tasks; `site-b` holds copies that
//! `site-a` knows as remote instances, recorded through the SneakerNet path (a
//! manifest of `main` creating outgoing transfers, then `clone/complete` as `site-b`
//! would call it).
//! The last-copy rule is also checked on one node whose only other copy is on a
//! drive: marked unavailable, or unplugged.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{ALWAYS_REHASH, commit_body, copy_local, flip_first_byte};
use crate::tasks::run_task;

/// `site-b` (re-hashes on every `validate/file`) and `site-a` with a `roll` task
/// (rolling_deletion of `main`, instances older than now, `remote_copies` wanted,
/// plus `settings`) and a `dedup` task; `site-a` knows `site-b` as a peer.
fn two_sites(remote_copies: u32, settings: &str) -> (TestNode, TestNode) {
    let b = TestNode::with_config(&format!("name = \"site-b\"\n{ALWAYS_REHASH}"));
    let a = TestNode::with_config(&format!(
        "name = \"site-a\"\n\
         [[tasks.rolling_deletion]]\ntask_name = \"roll\"\nevery = \"1h\"\n\
         store_name = \"main\"\nage_in_days = 0\n\
         number_of_remote_copies = {remote_copies}\n{settings}\n\
         [[tasks.duplicate_remote_instance_hypervisor]]\ntask_name = \"dedup\"\nevery = \"1h\"\n"
    ));
    a.add_peer("site-b", &b.base, "admin", &b.admin_password);
    wait_for_start_up_runs(&a);
    (a, b)
}

/// Waits until every task of `node` has finished its start-up run, so that the
/// runs the test asks for are the only ones that see its files.
fn wait_for_start_up_runs(node: &TestNode) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, listing) = node.post_admin("admin/tasks/list", json!({}));
        assert_eq!(status, 200, "{listing}");
        let tasks = listing["tasks"].as_array().unwrap();
        if tasks.iter().all(|t| !t["last_run"].is_null()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "start-up runs never finished: {listing}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bytes_of(name: &str) -> Vec<u8> {
    format!("{name} as recorded at site-a").into_bytes()
}

/// Uploads `name` to `node` with a deletion policy ("0" disallowed, "1" allowed).
fn upload_with_policy(node: &TestNode, name: &str, policy: &str) {
    let bytes = bytes_of(name);
    let staged = node.stage(name, &bytes);
    copy_local(&staged, &bytes);
    let body = commit_body(&staged, "local", policy, "test-uploader");
    let (status, reply) = node.post_admin("upload/commit", body);
    assert_eq!(status, 200, "{reply}");
}

/// Makes `site-b` hold `name` and `site-a` record it as a remote instance in
/// `site-b`'s store `store_id`.
fn ship(a: &TestNode, b: &TestNode, name: &str, store_id: u64) {
    if b.search_name(name).0 == 404 {
        b.upload(name, &bytes_of(name));
    }
    let (status, manifest) = a.post_admin(
        "admin/stores/manifest",
        json!({
            "store_name": "main",
            "create_outgoing_transfers": true,
            "destination_librarian": "site-b",
            "disable_store": false,
            "mark_local_instances_as_unavailable": false,
        }),
    );
    assert_eq!(status, 200, "{manifest}");
    let entry = manifest["store_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not in the manifest: {manifest}"));
    let (status, reply) = a.post_admin(
        "clone/complete",
        json!({
            "source_transfer_id": entry["outgoing_transfer_id"],
            "destination_transfer_id": 1,
            "store_id": store_id,
        }),
    );
    assert_eq!(status, 200, "clone/complete: {reply}");
}

/// The local instance of `name` on `node`'s default store, if it has a record.
fn local_instance(node: &TestNode, name: &str) -> Option<Value> {
    node.file_record(name)["instances"]
        .as_array()
        .unwrap()
        .first()
        .cloned()
}

fn remote_store_ids(node: &TestNode, name: &str) -> Vec<u64> {
    node.file_record(name)["remote_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["store_id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_copy_verified_downstream_is_deleted_and_its_instance_marked_unavailable() {
    let (a, b) = two_sites(1, "");
    a.upload("obs/shipped.dat", &bytes_of("obs/shipped.dat"));
    a.upload("obs/kept.dat", &bytes_of("obs/kept.dat"));
    ship(&a, &b, "obs/shipped.dat", 1);

    let report = run_task(&a, "roll");
    assert_eq!(report["outcome"], "completed", "{report}");
    assert_eq!(report["items_done"], 1, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(!a.store_root().join("obs/shipped.dat").exists());
    assert_eq!(
        local_instance(&a, "obs/shipped.dat").unwrap()["available"],
        false
    );
    assert!(
        a.store_root().join("obs/kept.dat").exists(),
        "a file no peer holds stays"
    );
    assert_eq!(
        local_instance(&a, "obs/kept.dat").unwrap()["available"],
        true
    );
    assert!(b.store_root().join("obs/shipped.dat").exists());

    let again = run_task(&a, "roll");
    assert_eq!(again["items_done"], 0, "{again}");
}

#[test]
fn a_downstream_checksum_mismatch_always_keeps_the_local_copy() {
    let (a, b) = two_sites(1, "");
    a.upload("bad/downstream.dat", &bytes_of("bad/downstream.dat"));
    ship(&a, &b, "bad/downstream.dat", 1);
    flip_first_byte(&b.store_root().join("bad/downstream.dat"));

    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 0, "{report}");
    assert_eq!(report["errors"], 1, "{report}");
    let why = report["last_error"].as_str().unwrap();
    assert!(
        why.contains("site-b") && why.contains("bad copy"),
        "{report}"
    );
    assert_eq!(
        fs::read(a.store_root().join("bad/downstream.dat")).unwrap(),
        bytes_of("bad/downstream.dat")
    );
    assert_eq!(
        local_instance(&a, "bad/downstream.dat").unwrap()["available"],
        true
    );
}

#[test]
fn an_unreachable_downstream_keeps_every_copy_and_is_reported_once_per_run() {
    let (a, mut b) = two_sites(1, "");
    for name in ["away/1.dat", "away/2.dat", "away/3.dat"] {
        a.upload(name, &bytes_of(name));
        ship(&a, &b, name, 1);
    }
    b.stop();
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 0, "{report}");
    assert_eq!(report["errors"], 1, "one report for the peer: {report}");
    for name in ["away/1.dat", "away/2.dat", "away/3.dat"] {
        assert!(a.store_root().join(name).exists(), "{name}");
    }
}

#[test]
fn without_verification_the_remote_instance_records_are_trusted() {
    let (a, mut b) = two_sites(1, "verify_downstream_checksums = false\n");
    a.upload("trusted.dat", &bytes_of("trusted.dat"));
    ship(&a, &b, "trusted.dat", 1);
    b.stop();
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 1, "{report}");
    assert!(!a.store_root().join("trusted.dat").exists());
}

#[test]
fn deletion_policy_is_respected_without_force_and_records_go_without_mark_unavailable() {
    let (a, b) = two_sites(1, "force_deletion = false\nmark_unavailable = false\n");
    upload_with_policy(&a, "policy/allowed.dat", "1");
    upload_with_policy(&a, "policy/disallowed.dat", "0");
    ship(&a, &b, "policy/allowed.dat", 1);
    ship(&a, &b, "policy/disallowed.dat", 1);

    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 1, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(!a.store_root().join("policy/allowed.dat").exists());
    assert!(
        local_instance(&a, "policy/allowed.dat").is_none(),
        "the instance record is removed"
    );
    assert!(a.store_root().join("policy/disallowed.dat").exists());
    assert_eq!(
        local_instance(&a, "policy/disallowed.dat").unwrap()["available"],
        true
    );
}

#[test]
fn the_last_copy_is_never_deleted() {
    let (a, _b) = two_sites(0, "");
    a.upload("only/copy.dat", &bytes_of("only/copy.dat"));
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 0, "{report}");
    assert!(a.store_root().join("only/copy.dat").exists());
}

#[test]
fn duplicate_remote_instances_collapse_to_the_oldest() {
    let (a, b) = two_sites(1, "");
    a.upload("dup/x.dat", &bytes_of("dup/x.dat"));
    a.upload("dup/y.dat", &bytes_of("dup/y.dat"));
    for store_id in [1, 1, 1, 2] {
        ship(&a, &b, "dup/x.dat", store_id);
    }
    ship(&a, &b, "dup/y.dat", 1);
    let before = a.file_record("dup/x.dat")["remote_instances"].clone();
    let oldest_in_store_1 = before
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["store_id"] == 1)
        .map(|r| r["id"].as_u64().unwrap())
        .min()
        .unwrap();

    let report = run_task(&a, "dedup");
    assert_eq!(report["items_done"], 2, "{report}");
    let mut stores = remote_store_ids(&a, "dup/x.dat");
    stores.sort();
    assert_eq!(stores, [1, 2], "one per (librarian, store)");
    let kept = a.file_record("dup/x.dat")["remote_instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == oldest_in_store_1);
    assert!(kept, "the oldest stays");
    assert_eq!(
        remote_store_ids(&a, "dup/y.dat"),
        [1],
        "no duplicate, no change"
    );
    assert_eq!(run_task(&a, "dedup")["items_done"], 0);
}

/// `site-a` alone: `main` is rolled (`roll`, no remote copy wanted, so only the
/// last-copy rule can keep a file) and `fill` copies `main` onto the drive at
/// `drive`, whose copies are the only other ones.
fn site_with_a_drive(drive: &Path) -> TestNode {
    let node = TestNode::with_config(&format!(
        "name = \"site-a\"\n\
         [[stores]]\nname = \"main\"\npath = \"store\"\n\
         [[stores]]\nname = \"drive\"\npath = \"{}\"\ningestable = false\n\
         [[tasks.create_local_clone]]\ntask_name = \"fill\"\nevery = \"1h\"\n\
         clone_from = \"main\"\nclone_to = \"drive\"\nage_in_days = 7\n\
         [[tasks.rolling_deletion]]\ntask_name = \"roll\"\nevery = \"1h\"\n\
         store_name = \"main\"\nage_in_days = 0\nnumber_of_remote_copies = 0\n",
        drive.display()
    ));
    wait_for_start_up_runs(&node);
    node
}

/// A plugged-in drive directory outside the node's data directory.
fn drive_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let drive = fs::canonicalize(dir.path()).unwrap().join("drive");
    fs::create_dir(&drive).unwrap();
    (dir, drive)
}

#[test]
fn a_copy_marked_unavailable_does_not_count_as_another_copy() {
    let (_dir, drive) = drive_dir();
    let a = site_with_a_drive(&drive);
    // With an available copy on the drive, the copy on main may go.
    a.upload("rolled.dat", &bytes_of("rolled.dat"));
    assert_eq!(run_task(&a, "fill")["items_done"], 1);
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 1, "{report}");
    assert!(!a.store_root().join("rolled.dat").exists());

    // Once the drive's copy is marked unavailable, main's copy is the last one.
    a.upload("kept.dat", &bytes_of("kept.dat"));
    assert_eq!(run_task(&a, "fill")["items_done"], 1);
    let (status, manifest) = a.post_admin(
        "admin/stores/manifest",
        json!({
            "store_name": "drive",
            "create_outgoing_transfers": false,
            "destination_librarian": "",
            "disable_store": false,
            "mark_local_instances_as_unavailable": true,
        }),
    );
    assert_eq!(status, 200, "{manifest}");
    assert!(drive.join("kept.dat").exists(), "the bytes are still there");
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 0, "{report}");
    assert_eq!(
        fs::read(a.store_root().join("kept.dat")).unwrap(),
        bytes_of("kept.dat")
    );
    assert_eq!(local_instance(&a, "kept.dat").unwrap()["available"], true);
}

#[test]
fn a_copy_on_an_unplugged_drive_does_not_count_as_another_copy() {
    let (dir, drive) = drive_dir();
    let a = site_with_a_drive(&drive);
    a.upload("carried.dat", &bytes_of("carried.dat"));
    assert_eq!(run_task(&a, "fill")["items_done"], 1);

    let drawer = dir.path().join("in-a-drawer");
    fs::rename(&drive, &drawer).unwrap();
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 0, "{report}");
    assert_eq!(
        fs::read(a.store_root().join("carried.dat")).unwrap(),
        bytes_of("carried.dat")
    );

    // Plugged back in, the drive's copy counts again and main's copy may go.
    fs::rename(&drawer, &drive).unwrap();
    let report = run_task(&a, "roll");
    assert_eq!(report["items_done"], 1, "{report}");
    assert!(!a.store_root().join("carried.dat").exists());
}
