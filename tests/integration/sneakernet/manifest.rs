//! `admin/stores/manifest` and `quire manifest get`.

use serde_json::json;

use super::*;

#[test]
fn a_manifest_lists_the_available_files_of_a_store() {
    let node = sneakernet_node("site-a", "");
    node.put_on_drive("obs/1.dat", b"one");
    node.put_on_drive("obs/2.dat", b"two!");
    node.upload("elsewhere.dat", b"not on the drive");

    let (status, manifest) =
        node.post_admin("admin/stores/manifest", json!({"store_name": "drive"}));
    assert_eq!(status, 200, "{manifest}");
    assert_eq!(manifest["librarian_name"], "site-a");
    assert_eq!(manifest["store_name"], "drive");
    let files = manifest["store_files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{manifest}");
    let one = files.iter().find(|f| f["name"] == "obs/1.dat").unwrap();
    assert_eq!(one["size"], 3);
    assert_eq!(one["checksum"], crate::support::md5(b"one"));
    assert_eq!(one["uploader"], "pipeline");
    assert_eq!(one["source"], "instrument");
    assert_eq!(one["create_time"], "2026-01-02T03:04:05.000006");
    assert_eq!(one["deletion_policy"], 0);
    assert_eq!(one["instance_available"], true);
    assert_eq!(
        one["outgoing_transfer_id"], -1,
        "no transfers were asked for"
    );
    let path = node.drive_root().join("obs/1.dat");
    assert_eq!(one["instance_path"], path.to_string_lossy().as_ref());
    assert!(one["instance_create_time"].is_string());

    let (status, marked) = node.post_admin(
        "admin/stores/manifest",
        json!({"store_name": "drive", "mark_local_instances_as_unavailable": true,
               "disable_store": true}),
    );
    assert_eq!(status, 200, "{marked}");
    assert_eq!(marked["store_files"].as_array().unwrap().len(), 2);
    let record = node.file_record("obs/1.dat");
    assert_eq!(record["instances"][0]["available"], false, "{record}");
    let (_, stores) = node.post_admin("admin/stores/list", json!({}));
    let drive = stores
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "drive")
        .unwrap();
    assert_eq!(drive["enabled"], false, "{stores}");

    let (status, empty) = node.post_admin("admin/stores/manifest", json!({"store_name": "drive"}));
    assert_eq!(status, 200);
    assert_eq!(
        empty["store_files"],
        json!([]),
        "only available copies are listed"
    );
}

#[test]
fn bad_requests_change_nothing() {
    let node = sneakernet_node("site-a", "");
    node.put_on_drive("x.dat", b"x");
    let (status, reply) = node.post_admin("admin/stores/manifest", json!({"store_name": "nope"}));
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["reason"], "Store nope does not exist.");

    let (status, reply) = node.post_admin(
        "admin/stores/manifest",
        json!({"store_name": "drive", "create_outgoing_transfers": true,
               "destination_librarian": "site-z", "disable_store": true,
               "mark_local_instances_as_unavailable": true}),
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["reason"], "Librarian site-z does not exist.");
    let (_, stores) = node.post_admin("admin/stores/list", json!({}));
    assert!(
        stores
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["enabled"] == true),
        "the store stays enabled when the request is refused: {stores}"
    );
    assert_eq!(node.file_record("x.dat")["instances"][0]["available"], true);

    node.create_user("reader", "pw", crate::support::READAPPEND);
    let (status, _) = node.post(
        "admin/stores/manifest",
        json!({"store_name": "drive"}),
        "reader",
        "pw",
    );
    assert_eq!(status, 401);
}

#[test]
fn quire_manifest_get_writes_what_the_route_returns() {
    let node = sneakernet_node("site-a", "");
    node.put_on_drive("m/1.dat", b"1");
    node.put_on_drive("m/2.dat", b"22");
    let output = node.dir.path().join("manifest.json");
    let printed = success(&node.cli(&[
        "manifest",
        "get",
        "--store",
        "drive",
        "-o",
        output.to_str().unwrap(),
        "--json",
    ]));
    let report: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(report["files"], 2, "{report}");
    assert_eq!(report["bytes"], 3);
    assert_eq!(report["outgoing_transfers"], 0);
    let written: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let (_, from_route) = node.post_admin("admin/stores/manifest", json!({"store_name": "drive"}));
    assert_eq!(written, from_route);

    let refused = node.cli(&["manifest", "get", "--store", "nope", "-o", "/dev/null"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Store nope does not exist"),
        "{refused:?}"
    );
}
