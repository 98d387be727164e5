//! SneakerNet between two quire nodes, from the CLI alone: A ingests files with
//! `quire upload`, its `create_local_clone` task fills its drive store,
//! writes a manifest that creates outgoing transfers to B, B ingests the drive, B's
//! `recieve_clone` stores the files and calls A back; A then lists B's copies and
//! its transfers COMPLETED. Also: a callback waits while A cannot be reached, and a
//! failed ingest fails A's transfer.

use std::net::TcpListener;

use serde_json::json;

use super::*;
use crate::support::md5;

/// A's drive filler: copies what its main store holds onto the drive when run.
const FILL_DRIVE: &str = "\n[[tasks.create_local_clone]]\n\
     task_name = \"fill\"\nevery = \"1h\"\nclone_from = \"main\"\n\
     clone_to = \"drive\"\nage_in_days = 7\n";

/// Site A and site B, each knowing the other as a peer with an account named
/// after it (A logs in to B as "site-a", B to A as "site-b").
fn two_sites() -> (TestNode, TestNode) {
    let a = sneakernet_node("site-a", FILL_DRIVE);
    let b = sneakernet_node("site-b", "");
    a.create_user("site-b", "b-at-a", 2);
    b.create_user("site-a", "a-at-b", crate::support::READAPPEND);
    a.add_peer("site-b", &b.base, "site-a", "a-at-b");
    b.add_peer("site-a", &a.base, "site-b", "b-at-a");
    (a, b)
}

/// A's manifest of its drive with outgoing transfers to B, written by the CLI.
fn manifest_for_b(a: &TestNode) -> (PathBuf, Value) {
    let path = a.drive_root().join("manifest.json");
    success(&a.cli(&[
        "manifest",
        "get",
        "--store",
        "drive",
        "--destination-librarian",
        "site-b",
        "--disable-store",
        "-o",
        path.to_str().unwrap(),
    ]));
    let manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, manifest)
}

fn transfer_ids(manifest: &Value) -> Vec<i64> {
    manifest["store_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outgoing_transfer_id"].as_i64().unwrap())
        .collect()
}

fn ingest_at(b: &TestNode, manifest: &Path, drive: &Path) -> String {
    success(&b.cli(&[
        "manifest",
        "ingest",
        manifest.to_str().unwrap(),
        "--store-root",
        drive.to_str().unwrap(),
    ]))
}

#[test]
fn sneakernet_round_trip_between_two_quire_nodes() {
    let (a, b) = two_sites();
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|n| {
            (
                format!("run7/{n}.dat"),
                format!("payload {n}").repeat(100 * (n + 1)).into_bytes(),
            )
        })
        .collect();
    let local = a.dir.path().join("outbox");
    std::fs::create_dir_all(&local).unwrap();
    for (index, (name, bytes)) in files.iter().enumerate() {
        let path = local.join(format!("{index}.dat"));
        std::fs::write(&path, bytes).unwrap();
        success(&a.cli(&["upload", "--checksum", "md5", path.to_str().unwrap(), name]));
    }
    // Plug in A's drive.
    std::fs::create_dir_all(a.drive_root()).unwrap();
    let filled: Value =
        serde_json::from_str(&success(&a.cli(&["tasks", "run", "fill", "--json"]))).unwrap();
    assert_eq!(filled["items_done"], 4, "A's drive filled: {filled}");
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(a.drive_root().join(name)).unwrap(), bytes);
        assert_eq!(
            a.file_record(name)["instances"].as_array().unwrap().len(),
            2
        );
    }
    let (manifest_path, manifest) = manifest_for_b(&a);
    let ids = transfer_ids(&manifest);
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|id| *id > 0), "{manifest}");
    for id in &ids {
        assert_eq!(
            a.outgoing_status(*id),
            ONGOING,
            "manifest transfers start ONGOING"
        );
    }
    let (_, again) = a.post_admin(
        "admin/stores/manifest",
        json!({"store_name": "drive", "create_outgoing_transfers": true,
               "destination_librarian": "site-b"}),
    );
    let mut reused = transfer_ids(&again);
    let mut first = ids.clone();
    reused.sort();
    first.sort();
    assert_eq!(reused, first, "a second manifest reuses the live transfers");

    let text = ingest_at(&b, &manifest_path, &a.drive_root());
    assert!(text.contains("ingested 4/4 files"), "{text}");
    let report = success(&b.cli(&["tasks", "run", "receive", "--json"]));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["items_done"], 8,
        "4 files stored and 4 callbacks: {report}"
    );
    assert_eq!(report["errors"], 0, "{report}");

    let b_store_id = b.file_record("run7/0.dat")["instances"][0]["store_id"].clone();
    assert!(b_store_id.is_u64(), "B's copies are in a store of B");
    for (name, bytes) in &files {
        let at_b = b.file_record(name);
        assert_eq!(at_b["checksum"], md5(bytes));
        let at_a = a.file_record(name);
        let remote = at_a["remote_instances"].as_array().unwrap();
        assert_eq!(remote.len(), 1, "{at_a}");
        assert_eq!(remote[0]["librarian_name"], "site-b");
        assert_eq!(remote[0]["store_id"], b_store_id);
    }
    let (outgoing, _) = a.transfer_status(&ids, &[]);
    for id in &ids {
        assert_eq!(outgoing[id.to_string()], COMPLETED, "{outgoing}");
    }

    let rerun = ingest_at(&b, &manifest_path, &a.drive_root());
    assert!(rerun.contains("4/4 already existed"), "{rerun}");
}

#[test]
fn a_callback_waits_while_the_source_is_unreachable() {
    let (a, b) = two_sites();
    a.put_on_drive("wait/1.dat", b"patience");
    let (manifest_path, manifest) = manifest_for_b(&a);
    let id = transfer_ids(&manifest)[0];

    // B knows A at an address where nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (status, _) = b.post_admin(
        "admin/librarians/remove",
        json!({"librarian_name": "site-a", "remove_outgoing_transfers": false}),
    );
    assert_eq!(status, 200);
    b.add_peer("site-a", &dead, "site-b", "b-at-a");

    ingest_at(&b, &manifest_path, &a.drive_root());
    let report = b.run_task("receive");
    assert_eq!(report["items_done"], 1, "the file is stored: {report}");
    assert!(report["errors"].as_u64().unwrap() >= 1, "{report}");
    b.file_record("wait/1.dat");
    assert_eq!(a.outgoing_status(id), ONGOING, "A has not heard yet");

    b.post_admin(
        "admin/librarians/remove",
        json!({"librarian_name": "site-a", "remove_outgoing_transfers": false}),
    );
    b.add_peer("site-a", &a.base, "site-b", "b-at-a");
    let report = b.run_task("receive");
    assert_eq!(
        report["items_done"], 1,
        "the owed callback is delivered: {report}"
    );
    assert_eq!(a.outgoing_status(id), COMPLETED);
    assert_eq!(
        a.file_record("wait/1.dat")["remote_instances"][0]["librarian_name"],
        "site-b"
    );
}

#[test]
fn a_failed_ingest_fails_the_source_transfer() {
    let (a, b) = two_sites();
    a.put_on_drive("rot/1.dat", b"fine on the drive");
    let (manifest_path, manifest) = manifest_for_b(&a);
    let id = transfer_ids(&manifest)[0];
    ingest_at(&b, &manifest_path, &a.drive_root());
    // The staged copy rots before B stores it.
    let staging = b.store_root().join(".quire-staging");
    let staged = walk_files(&staging);
    assert_eq!(staged.len(), 1, "{staged:?}");
    std::fs::write(&staged[0], b"rotten in staging").unwrap();

    let report = b.run_task("receive");
    assert_eq!(report["items_done"], 1, "the failure callback: {report}");
    assert_eq!(report["errors"], 1, "the failed clone: {report}");
    assert_eq!(a.outgoing_status(id), FAILED);
    assert_eq!(b.search_name("rot/1.dat").0, 404);
}

#[test]
fn clone_complete_checks_the_caller_and_the_status() {
    let (a, _b) = two_sites();
    a.put_on_drive("cc/1.dat", b"cc");
    let (_, manifest) = manifest_for_b(&a);
    let id = transfer_ids(&manifest)[0];
    a.create_user("site-c", "c", 2);
    let complete = json!({"source_transfer_id": id, "destination_transfer_id": 9, "store_id": 1});
    let (status, reply) = a.post("clone/complete", complete.clone(), "site-c", "c");
    assert_eq!(status, 400, "another peer's transfer: {reply}");
    assert_eq!(reply["reason"], "Could not find transfer.");
    assert_eq!(reply["destination_transfer_id"], 9);
    let (status, reply) = a.post("clone/complete", complete.clone(), "site-b", "b-at-a");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(a.outgoing_status(id), COMPLETED);
    let (status, reply) = a.post("clone/complete", complete, "site-b", "b-at-a");
    assert_eq!(status, 406, "{reply}");

    let update =
        json!({"source_transfer_ids": [id], "destination_transfer_ids": [], "new_status": FAILED});
    let (_, answer) = a.post("checkin/update", update, "site-b", "b-at-a");
    assert_eq!(
        answer["unmodified_source_transfer_ids"],
        json!([id]),
        "{answer}"
    );
}

fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn validate_asks_the_librarian_of_each_remote_copy_and_says_when_it_cannot() {
    let (a, mut b) = two_sites();
    let bytes = b"checked downstream too";
    a.put_on_drive("val/1.dat", bytes);
    let (_, manifest) = manifest_for_b(&a);
    let id = transfer_ids(&manifest)[0];
    b.upload("val/1.dat", bytes);
    let complete = json!({"source_transfer_id": id, "destination_transfer_id": 1, "store_id": 1});
    let (status, reply) = a.post("clone/complete", complete, "site-b", "b-at-a");
    assert_eq!(
        status, 200,
        "A records B's copy as a remote instance: {reply}"
    );
    let validate = |local_only: bool| {
        let request = json!({"file_name": "val/1.dat", "fresh": true, "local_only": local_only});
        let (status, rows) = a.post_admin("validate/file", request);
        assert_eq!(status, 200, "{rows}");
        rows.as_array().unwrap().clone()
    };
    let from_b = |rows: &[Value]| -> Vec<Value> {
        rows.iter()
            .filter(|r| r["librarian"] == "site-b")
            .cloned()
            .collect()
    };

    let rows = validate(false);
    let b_rows = from_b(&rows);
    assert_eq!(b_rows.len(), 1, "B answers for its copy: {rows:?}");
    assert_eq!(b_rows[0]["computed_same_checksum"], true, "{rows:?}");
    assert_eq!(b_rows[0]["cached"], false, "A's fresh reaches B: {rows:?}");
    assert!(
        rows.iter().any(|r| r["librarian"] == "site-a"),
        "A's own copy is there too: {rows:?}"
    );
    assert!(
        from_b(&validate(true)).is_empty(),
        "local_only asks nobody else"
    );
    // B asking A (as its peer account) never makes A ask B back, even without
    // local_only, as a Librarian peer would send it.
    let (status, rows) = a.post(
        "validate/file",
        json!({"file_name": "val/1.dat"}),
        "site-b",
        "b-at-a",
    );
    assert_eq!(status, 200, "{rows}");
    assert!(from_b(rows.as_array().unwrap()).is_empty(), "{rows}");

    let at_b = b.store_root().join("val/1.dat");
    let mut permissions = std::fs::metadata(&at_b).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&at_b, permissions).unwrap();
    std::fs::write(&at_b, b"rotten downstream, same size").unwrap();
    let b_rows = from_b(&validate(false));
    assert_eq!(b_rows[0]["computed_same_checksum"], false, "{b_rows:?}");
    assert_ne!(b_rows[0]["current_checksum"], "", "{b_rows:?}");

    b.kill();
    let rows = validate(false);
    let b_rows = from_b(&rows);
    assert_eq!(
        b_rows.len(),
        1,
        "the unanswered copy still has its row: {rows:?}"
    );
    assert_eq!(b_rows[0]["computed_same_checksum"], false);
    assert!(b_rows[0]["unreachable"].is_string(), "{b_rows:?}");
    let output = a.cli(&["validate", "val/1.dat"]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("UNREACHABLE"), "{stdout}");
    assert!(stderr.contains("could not be checked"), "{stderr}");
}

#[test]
fn the_outgoing_hypervisor_settles_stale_transfers_by_asking_their_destination() {
    let hypervisor = "\n[[tasks.outgoing_transfer_hypervisor]]\n\
         task_name = \"hyper\"\nevery = \"1h\"\nage_in_days = 0\n";
    let a = sneakernet_node("site-a", &format!("{FILL_DRIVE}{hypervisor}"));
    let b = sneakernet_node("site-b", "");
    a.create_user("site-b", "b-at-a", 2);
    b.create_user("site-a", "a-at-b", crate::support::READAPPEND);
    a.add_peer("site-b", &b.base, "site-a", "a-at-b");
    // A peer that never answers: its transfers must be left alone.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    a.add_peer("site-c", &silent, "site-a", "x");
    for (name, bytes) in [
        ("hv/arrived.dat", &b"arrived"[..]),
        ("hv/lost.dat", b"never arrived"),
        ("hv/other.dat", b"other bytes"),
    ] {
        a.put_on_drive(name, bytes);
    }
    let to_c = a.cli(&[
        "manifest",
        "get",
        "--store",
        "drive",
        "--destination-librarian",
        "site-c",
        "-o",
        a.dir.path().join("to-c.json").to_str().unwrap(),
    ]);
    success(&to_c);
    let (_, manifest) = manifest_for_b(&a);
    let id_of = |name: &str| -> i64 {
        manifest["store_files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["outgoing_transfer_id"]
            .as_i64()
            .unwrap()
    };
    // B stored one file as sent (its callback lost) and another with other bytes.
    b.upload("hv/arrived.dat", b"arrived");
    b.upload("hv/other.dat", b"different bytes");

    let report = a.run_task("hyper");
    assert_eq!(report["items_done"], 3, "B's three transfers: {report}");
    assert_eq!(a.outgoing_status(id_of("hv/arrived.dat")), COMPLETED);
    assert_eq!(a.outgoing_status(id_of("hv/lost.dat")), FAILED);
    assert_eq!(a.outgoing_status(id_of("hv/other.dat")), FAILED);
    let remote = a.file_record("hv/arrived.dat")["remote_instances"].clone();
    assert_eq!(remote.as_array().unwrap().len(), 1, "{remote}");
    assert_eq!(remote[0]["librarian_name"], "site-b");
    assert_eq!(
        remote[0]["store_id"],
        b.file_record("hv/arrived.dat")["instances"][0]["store_id"]
    );
    assert!(
        a.file_record("hv/other.dat")["remote_instances"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (live, _) = a.transfer_status(&(1..=6).collect::<Vec<i64>>(), &[]);
    let still_ongoing = live
        .as_object()
        .unwrap()
        .values()
        .filter(|s| **s == ONGOING)
        .count();
    assert_eq!(still_ongoing, 3, "C's transfers wait for an answer: {live}");

    let again = a.run_task("hyper");
    assert_eq!(again["items_done"], 0, "nothing settles twice: {again}");
}

#[test]
fn the_incoming_hypervisor_asks_the_source_of_each_stale_clone() {
    let hypervisor = "\n[[tasks.incoming_transfer_hypervisor]]\n\
         task_name = \"hyper\"\nevery = \"1h\"\nage_in_days = 0\n";
    let a = sneakernet_node("site-a", FILL_DRIVE);
    let b = sneakernet_node("site-b", hypervisor);
    a.create_user("site-b", "b-at-a", 2);
    b.create_user("site-a", "a-at-b", crate::support::READAPPEND);
    a.add_peer("site-b", &b.base, "site-a", "a-at-b");
    b.add_peer("site-a", &a.base, "site-b", "b-at-a");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    b.add_peer("site-c", &silent, "site-b", "x");
    a.put_on_drive("in/behind.dat", b"behind");
    let (_, manifest) = manifest_for_b(&a);
    let sent = transfer_ids(&manifest)[0];
    assert_eq!(a.outgoing_status(sent), ONGOING);

    // Clones staged at B: one A is further on with, one A never sent, one from a
    // librarian B does not know, one from a librarian that does not answer.
    let stage = |name: &str, source: &str, id: i64| {
        destination_id(&b.clone_stage(clone_stage_body(name, name.as_bytes(), source, source, id)))
    };
    let behind = stage("in/behind.dat", "site-a", sent);
    let unknown_id = stage("in/unknown.dat", "site-a", sent + 100);
    let stranger = stage("in/stranger.dat", "site-z", 5);
    let silent_source = stage("in/silent.dat", "site-c", 6);

    let report = b.run_task("hyper");
    assert_eq!(report["items_done"], 3, "{report}");
    assert_eq!(b.incoming_status(behind), ONGOING, "caught up with A");
    assert_eq!(b.incoming_status(unknown_id), FAILED);
    assert_eq!(b.incoming_status(stranger), FAILED);
    assert_eq!(
        b.incoming_status(silent_source),
        INITIATED,
        "no answer is no reason to fail"
    );
    let again = b.run_task("hyper");
    assert_eq!(again["items_done"], 0, "same state on both sides: {again}");
}
