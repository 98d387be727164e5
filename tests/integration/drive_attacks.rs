//! `quire manifest ingest` from a hostile carried drive: a listed file that is a
//! link to a local file only this user can read, and a directory on a listed
//! path that is a link to a local directory. Nothing behind a link is read: it is
//! neither stored (even when the manifest's checksum matches it) nor described in
//! an error (no size or digest to guess its content by).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::sneakernet::sneakernet_node;
use crate::support::md5;

/// The local secret: readable by this user only.
const SECRET: &[u8] = b"peer secret key material";

/// Writes the secret at `<dir>/private/key` (0600) and returns its path.
fn local_secret(dir: &Path) -> PathBuf {
    let private = dir.join("private");
    fs::create_dir_all(&private).unwrap();
    let key = private.join("key");
    fs::write(&key, SECRET).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    key
}

/// A drive at `<dir>/drive-mnt` whose manifest lists `names`, each declared as
/// `declared` (size and md5); returns the manifest's path.
fn drive_listing(dir: &Path, names: &[&str], declared: &[u8]) -> PathBuf {
    let drive = dir.join("drive-mnt");
    fs::create_dir_all(&drive).unwrap();
    let entries: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({
                "name": name, "create_time": "2026-01-02T03:04:05", "size": declared.len(),
                "checksum": md5(declared), "uploader": "pipeline",
                "source": "instrument", "instance_path": format!("/old/{name}"),
                "deletion_policy": 0, "instance_create_time": "2026-01-03T00:00:00",
                "instance_available": true, "outgoing_transfer_id": -1,
            })
        })
        .collect();
    let manifest =
        json!({"librarian_name": "site-a", "store_name": "drive", "store_files": entries});
    let path = drive.join("manifest.json");
    fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    path
}

/// Runs the ingest with `--json`; returns its report.
fn ingest(node: &TestNode, manifest: &Path) -> Value {
    let drive = manifest.parent().unwrap().to_str().unwrap();
    let output = node.cli(&[
        "manifest",
        "ingest",
        manifest.to_str().unwrap(),
        "--store-root",
        drive,
        "--json",
    ]);
    assert!(!output.status.success(), "the linked files fail the ingest");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The drive with `link.dat` linked to the secret and `linkdir/` linked to the
/// secret's directory.
fn plant_links(node: &TestNode, manifest: &Path) {
    let key = local_secret(node.dir.path());
    let drive = manifest.parent().unwrap();
    symlink(&key, drive.join("link.dat")).unwrap();
    symlink(key.parent().unwrap(), drive.join("linkdir")).unwrap();
}

#[test]
fn links_on_a_drive_are_never_followed_even_when_the_checksum_matches() {
    let node = sneakernet_node("site-b", "");
    let manifest = drive_listing(node.dir.path(), &["link.dat", "linkdir/key"], SECRET);
    plant_links(&node, &manifest);
    let report = ingest(&node, &manifest);
    assert_eq!(report["ingested"], 0, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let reasons = report["failures"].to_string();
    assert!(reasons.contains("symbolic link"), "{reasons}");
    node.run_task("receive");
    assert_eq!(node.search_name("link.dat").0, 404);
    assert_eq!(node.search_name("linkdir/key").0, 404);
    for entry in walkdir::WalkDir::new(&node.data_dir).into_iter().flatten() {
        if entry.file_type().is_file() {
            assert_ne!(
                fs::read(entry.path()).unwrap(),
                SECRET,
                "{} holds the secret",
                entry.path().display()
            );
        }
    }
}

#[test]
fn a_mismatch_behind_a_link_reveals_neither_size_nor_digest() {
    let node = sneakernet_node("site-b", "");
    let guess = b"a guess at the secret";
    let manifest = drive_listing(node.dir.path(), &["link.dat", "linkdir/key"], guess);
    plant_links(&node, &manifest);
    let report = ingest(&node, &manifest);
    assert_eq!(report["failed"], 2, "{report}");
    let reasons = report["failures"].to_string();
    let digest = md5(SECRET);
    let hex = digest.rsplit(':').next().unwrap();
    assert!(!reasons.contains(hex), "the secret's md5 leaks: {reasons}");
    let size = format!("{} bytes", SECRET.len());
    assert!(
        !reasons.contains(&size),
        "the secret's size leaks: {reasons}"
    );
    assert!(reasons.contains("symbolic link"), "{reasons}");
}
