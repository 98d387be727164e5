//! `quire manifest ingest`: stage, verified copy, ONGOING, STAGED per file; files
//! already on the node are skipped, so a re-run is safe; damaged copies are refused.

use std::fs;

use serde_json::json;

use super::*;

/// A manifest (as site A would write it, without transfers) and a drive directory
/// holding its files.
fn drive_with_manifest(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let drive = dir.join("mnt-drive");
    let mut entries = Vec::new();
    for (name, bytes) in files {
        let path = drive.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        entries.push(json!({
            "name": name, "create_time": "2026-01-02T03:04:05", "size": bytes.len(),
            "checksum": crate::support::md5(bytes), "uploader": "pipeline",
            "source": "instrument", "instance_path": format!("/old/drive/{name}"),
            "deletion_policy": 0, "instance_create_time": "2026-01-03T00:00:00",
            "instance_available": true, "outgoing_transfer_id": -1,
        }));
    }
    let manifest =
        json!({"librarian_name": "site-a", "store_name": "drive", "store_files": entries});
    let path = drive.join("manifest.json");
    fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    path
}

fn ingest(node: &TestNode, manifest: &Path, json: bool) -> Output {
    let drive = manifest.parent().unwrap().to_str().unwrap();
    let mut args = vec![
        "manifest",
        "ingest",
        manifest.to_str().unwrap(),
        "--store-root",
        drive,
    ];
    if json {
        args.push("--json");
    }
    node.cli(&args)
}

#[test]
fn ingest_stages_each_file_and_a_rerun_skips_what_is_there() {
    let node = sneakernet_node("site-b", "");
    let files: Vec<(String, Vec<u8>)> = (0..5)
        .map(|n| (format!("night/{n}.dat"), vec![n as u8; 1000 * (n + 1)]))
        .collect();
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let manifest = drive_with_manifest(node.dir.path(), &borrowed);

    let report: Value = serde_json::from_str(&success(&ingest(&node, &manifest, true))).unwrap();
    assert_eq!(report["total"], 5, "{report}");
    assert_eq!(report["ingested"], 5, "{report}");
    assert_eq!(report["already_existed"], 0);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["bytes_copied"], 15000);

    let stored = node.run_task("receive");
    assert_eq!(stored["items_done"], 5, "{stored}");
    let record = node.file_record("night/3.dat");
    assert_eq!(record["uploader"], "site-a", "the manifest's librarian");
    assert_eq!(record["source"], "instrument", "the file's own source");
    assert_eq!(
        fs::read(node.store_root().join("night/3.dat")).unwrap(),
        files[3].1
    );

    let text = success(&ingest(&node, &manifest, false));
    assert!(text.contains("ingested 0/5 files"), "{text}");
    assert!(text.contains("5/5 already existed"), "{text}");
}

#[test]
fn a_damaged_or_missing_file_is_not_ingested_and_the_others_are() {
    let node = sneakernet_node("site-b", "");
    let manifest = drive_with_manifest(
        node.dir.path(),
        &[
            ("d/good.dat", b"good"),
            ("d/bad.dat", b"original"),
            ("d/gone.dat", b"gone"),
        ],
    );
    let drive = manifest.parent().unwrap();
    fs::write(drive.join("d/bad.dat"), b"bit-rot!").unwrap();
    fs::remove_file(drive.join("d/gone.dat")).unwrap();

    let output = ingest(&node, &manifest, true);
    assert!(
        !output.status.success(),
        "failures make the exit status non-zero"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ingested"], 1, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let reasons = report["failures"].to_string();
    assert!(reasons.contains("damaged"), "{reasons}");
    assert!(reasons.contains("not on the drive"), "{reasons}");

    assert_eq!(node.run_task("receive")["items_done"], 1);
    node.file_record("d/good.dat");
    assert_eq!(node.search_name("d/bad.dat").0, 404);
    let (_, transfers) = node.transfer_status(&[], &[1, 2, 3]);
    let failed = transfers
        .as_object()
        .unwrap()
        .values()
        .filter(|s| **s == FAILED)
        .count();
    assert_eq!(
        failed, 1,
        "the damaged copy's transfer was failed: {transfers}"
    );
}
