//! `admin/stores/list`, `admin/stores/state_change`, `admin/add_file` and
//! `admin/instance/delete_local` / `delete_remote`.

use std::fs;

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{READAPPEND, md5};

const TWO_STORES: &str = r#"
[[stores]]
name = "alpha"
path = "alpha"

[[stores]]
name = "drive"
path = "drive-not-plugged-in"
ingestable = false
"#;

fn store_list(node: &TestNode) -> Vec<Value> {
    let (status, body) = node.post_admin("admin/stores/list", json!({}));
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a list of stores").clone()
}

#[test]
fn stores_list_reports_every_store_with_its_state() {
    let node = TestNode::with_config(TWO_STORES);
    let stores = store_list(&node);
    assert_eq!(stores.len(), 2, "{stores:?}");
    let alpha = &stores[0];
    let mut keys: Vec<&str> = alpha
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "available",
            "enabled",
            "free_space",
            "ingestable",
            "name",
            "store_type"
        ]
    );
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["store_type"], "local");
    assert!(alpha["free_space"].as_u64().unwrap() > 0, "{alpha}");
    assert_eq!(
        (&alpha["ingestable"], &alpha["available"], &alpha["enabled"]),
        (&json!(true), &json!(true), &json!(true))
    );
    let drive = &stores[1];
    assert_eq!(drive["name"], "drive");
    assert_eq!(drive["ingestable"], false);
    assert_eq!(drive["available"], false, "its root does not exist");
    assert_eq!(drive["free_space"], 0);
    let staged = node.stage("goes-to-alpha", b"a");
    assert_eq!(staged["store_name"], "alpha");
}

#[test]
fn a_store_held_back_by_report_full_fraction_has_no_room() {
    let node = TestNode::with_config(
        "[[stores]]\nname = \"tight\"\npath = \"tight\"\nreport_full_fraction = 0.000001\n",
    );
    assert_eq!(store_list(&node)[0]["free_space"], 0);
    let (status, body) = node.stage_as("no-room", b"x", "ann", node.admin());
    assert_eq!(status, 413, "{body}");
}

#[test]
fn stores_state_change_disables_and_enables_a_store() {
    let node = TestNode::start();
    let body = json!({"store_name": "main", "enabled": false});
    let (status, reply) = node.post_admin("admin/stores/state_change", body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"store_name": "main", "enabled": false, "success": true})
    );
    assert_eq!(store_list(&node)[0]["enabled"], false);
    let body = json!({"store_name": "main", "enabled": true});
    let (status, _) = node.post_admin("admin/stores/state_change", body);
    assert_eq!(status, 200);
    assert_eq!(store_list(&node)[0]["enabled"], true);
}

#[test]
fn stores_state_change_of_an_unknown_store_is_400() {
    let node = TestNode::start();
    let body = json!({"store_name": "nowhere", "enabled": false});
    let (status, reply) = node.post_admin("admin/stores/state_change", body);
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("nowhere"),
        "{reply}"
    );
}

#[test]
fn admin_routes_need_the_admin_level() {
    let node = TestNode::start();
    node.create_user("uploader", "up-pw", READAPPEND);
    let routes = [
        ("admin/stores/list", json!({})),
        (
            "admin/stores/state_change",
            json!({"store_name": "main", "enabled": false}),
        ),
        (
            "admin/instance/delete_local",
            json!({"instance_id": 1, "delete_file": true}),
        ),
    ];
    for (route, body) in routes {
        let (status, reply) = node.post(route, body, "uploader", "up-pw");
        assert_eq!(status, 401, "{route}: {reply}");
    }
    assert_eq!(store_list(&node)[0]["enabled"], true, "nothing changed");
}

fn add_file_body(node: &TestNode, name: &str, bytes: &[u8], checksum: &str) -> Value {
    json!({
        "name": name,
        "create_time": "2026-01-02T03:04:05.000006",
        "size": bytes.len(),
        "checksum": checksum,
        "uploader": "field-team",
        "source": "site-b",
        "path": node.store_root().join(name).to_str().unwrap(),
        "store_name": "main",
    })
}

fn place(node: &TestNode, name: &str, bytes: &[u8]) {
    let path = node.store_root().join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn add_file_registers_data_already_in_the_store() {
    let node = TestNode::start();
    let bytes = b"carried in on a drive";
    place(&node, "added/file.dat", bytes);
    let body = add_file_body(&node, "added/file.dat", bytes, &md5(bytes));
    let (status, reply) = node.post_admin("admin/add_file", body.clone());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"already_exists": false, "file_exists": true, "success": true})
    );
    let file = node.file_record("added/file.dat");
    assert_eq!(file["create_time"], "2026-01-02T03:04:05.000006");
    assert_eq!(file["uploader"], "field-team");
    assert_eq!(file["source"], "site-b");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["instances"][0]["path"], body["path"]);
    let (status, reply) = node.post_admin("admin/add_file", body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["already_exists"], true, "{reply}");
}

#[test]
fn add_file_with_a_wrong_checksum_is_400_and_registers_nothing() {
    let node = TestNode::start();
    place(&node, "wrong.dat", b"actual bytes");
    let body = add_file_body(&node, "wrong.dat", b"actual bytes", &md5(b"other bytes!"));
    let (status, reply) = node.post_admin("admin/add_file", body);
    assert_eq!(status, 400, "{reply}");
    let (status, _) = node.search_name("wrong.dat");
    assert_eq!(status, 404);
}

#[test]
fn add_file_of_data_that_is_not_at_store_root_slash_name_is_400() {
    let node = TestNode::start();
    let mut body = add_file_body(&node, "absent.dat", b"absent", &md5(b"absent"));
    let (status, reply) = node.post_admin("admin/add_file", body.clone());
    assert_eq!(status, 400, "missing data: {reply}");
    place(&node, "elsewhere.dat", b"absent");
    body["path"] = json!(node.store_root().join("elsewhere.dat").to_str().unwrap());
    let (status, reply) = node.post_admin("admin/add_file", body);
    assert_eq!(status, 400, "wrong place: {reply}");
    let (status, _) = node.search_name("absent.dat");
    assert_eq!(status, 404);
}

fn instance_id(node: &TestNode, name: &str) -> u64 {
    node.file_record(name)["instances"][0]["id"]
        .as_u64()
        .expect("an instance id")
}

#[test]
fn delete_local_with_delete_file_removes_the_record_and_the_bytes() {
    let node = TestNode::start();
    node.upload("doomed/data.bin", b"doomed");
    let id = instance_id(&node, "doomed/data.bin");
    let body = json!({"instance_id": id, "delete_file": true});
    let (status, reply) = node.post_admin("admin/instance/delete_local", body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"success": true, "instance_id": id}));
    assert!(
        !node.store_root().join("doomed/data.bin").exists(),
        "bytes removed"
    );
    assert_eq!(node.file_record("doomed/data.bin")["instances"], json!([]));
}

#[test]
fn delete_local_without_delete_file_keeps_the_bytes() {
    let node = TestNode::start();
    node.upload("kept.bin", b"kept");
    let id = instance_id(&node, "kept.bin");
    let body = json!({"instance_id": id, "delete_file": false});
    let (status, reply) = node.post_admin("admin/instance/delete_local", body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        fs::read(node.store_root().join("kept.bin")).unwrap(),
        b"kept"
    );
    assert_eq!(node.file_record("kept.bin")["instances"], json!([]));
}

#[test]
fn delete_of_an_unknown_instance_is_400() {
    let node = TestNode::start();
    for route in [
        "admin/instance/delete_local",
        "admin/instance/delete_remote",
    ] {
        let body = json!({"instance_id": 31337, "delete_file": true});
        let (status, reply) = node.post_admin(route, body);
        assert_eq!(status, 400, "{route}: {reply}");
        assert_eq!(
            reply,
            json!({"success": false, "instance_id": 31337}),
            "{route}"
        );
    }
}

/// Regression: every successful store or account change logged
/// `ERROR ... the database writer has stopped`, which would page an operator.
#[test]
fn successful_admin_changes_log_no_error() {
    let node = TestNode::start();
    let steps: [&[&str]; 6] = [
        &["stores", "disable", "main"],
        &["stores", "enable", "main"],
        &["users", "create", "pipeline", "--level", "readappend"],
        &["users", "passwd", "pipeline", "--set-password", "a new one"],
        &["users", "delete", "pipeline"],
        &["users", "list"],
    ];
    for args in steps {
        let output = node.cli(args);
        assert!(
            output.status.success(),
            "quire {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (status, body) = node.post_admin("admin/stores/list", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["enabled"], true, "{body}");
    let log = node.log();
    assert!(log.contains("store state changed"), "{log}");
    assert!(!log.contains("ERROR"), "a success logged an error:\n{log}");
}
