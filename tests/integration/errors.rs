//! `search/error` and `error/clear`, and the 422 answer for bodies that do not
//! match a route's schema.

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{ALWAYS_REHASH, flip_first_byte};

/// A node with one recorded data-integrity error; returns the node and the error.
fn node_with_an_error() -> (TestNode, Value) {
    let node = TestNode::with_config(ALWAYS_REHASH);
    node.upload("broken.dat", b"soon broken");
    flip_first_byte(&node.store_root().join("broken.dat"));
    let (status, rows) = node.post_admin("validate/file", json!({"file_name": "broken.dat"}));
    assert_eq!(status, 200, "{rows}");
    let (status, errors) = node.post_admin("search/error", json!({}));
    assert_eq!(status, 200, "{errors}");
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    let error = errors[0].clone();
    (node, error)
}

#[test]
fn search_error_on_a_node_without_errors_is_404_no_errors_found() {
    let node = TestNode::start();
    let (status, body) = node.post_admin("search/error", json!({}));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["reason"], "No errors found.");
    assert!(body["suggested_remedy"].is_string(), "{body}");
}

#[test]
fn search_error_answers_every_field_and_filters() {
    let (node, error) = node_with_an_error();
    let mut keys: Vec<&str> = error
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "caller",
            "category",
            "cleared",
            "cleared_time",
            "id",
            "message",
            "raised_time",
            "severity"
        ]
    );
    assert_eq!(error["cleared_time"], Value::Null);
    let id = error["id"].clone();
    let found = |body: Value| node.post_admin("search/error", body).0;
    assert_eq!(found(json!({"id": id})), 200);
    assert_eq!(found(json!({"severity": "error"})), 200);
    assert_eq!(found(json!({"severity": "critical"})), 404);
    assert_eq!(found(json!({"category": "transfer"})), 404);
    let window = ["2000-01-01T00:00:00", "2000-01-02T00:00:00"];
    assert_eq!(found(json!({"create_time_window": window})), 404);
}

#[test]
fn error_clear_clears_once_then_refuses_with_400() {
    let (node, error) = node_with_an_error();
    let id = error["id"].clone();
    let (status, body) = node.post_admin("error/clear", json!({"id": id}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(body["cleared"], true);
    assert!(body["cleared_time"].is_string(), "{body}");
    let (status, body) = node.post_admin("error/clear", json!({"id": id}));
    assert_eq!(status, 400, "already cleared: {body}");

    let (status, _) = node.post_admin("search/error", json!({}));
    assert_eq!(status, 404, "cleared errors are hidden by default");
    let (status, errors) = node.post_admin("search/error", json!({"include_resolved": true}));
    assert_eq!(status, 200, "{errors}");
    assert_eq!(errors[0]["cleared"], true);
    assert!(errors[0]["cleared_time"].is_string(), "{errors}");
}

#[test]
fn error_clear_of_an_unknown_id_is_404() {
    let node = TestNode::start();
    let (status, body) = node.post_admin("error/clear", json!({"id": 4242}));
    assert_eq!(status, 404, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("4242"), "{body}");
}

#[test]
fn a_field_of_the_wrong_type_is_422_pointing_at_it() {
    let node = TestNode::start();
    let (status, body) = node.post_admin("search/file", json!({"max_results": "many"}));
    assert_eq!(status, 422, "{body}");
    let item = &body["detail"][0];
    assert_eq!(item["loc"], json!(["body", "max_results"]));
    assert_eq!(item["input"], "many");
    assert!(
        item["msg"].is_string() && item["type"].is_string(),
        "{body}"
    );
}

#[test]
fn malformed_json_is_422_json_invalid_on_every_json_route() {
    let node = TestNode::start();
    for route in [
        "search/file",
        "users/create",
        "error/clear",
        "admin/add_file",
    ] {
        let reply = node.post_raw(route, b"{oops", Some(node.admin()));
        assert_eq!(reply.status, 422, "{route}: {}", reply.text);
        assert_eq!(reply.json["detail"][0]["type"], "json_invalid", "{route}");
    }
}

#[test]
fn an_empty_body_counts_as_an_empty_object() {
    let node = TestNode::start();
    let reply = node.post_raw("search/file", b"", Some(node.admin()));
    assert_eq!(
        reply.status, 404,
        "all filters are optional: {}",
        reply.text
    );
    let reply = node.post_raw("error/clear", b"", Some(node.admin()));
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.json["detail"][0]["type"], "missing");
    assert_eq!(reply.json["detail"][0]["loc"], json!(["body", "id"]));
}

#[test]
fn unknown_routes_are_404() {
    let node = TestNode::start();
    let reply = node.post_raw("no/such/route", b"{}", Some(node.admin()));
    assert_eq!(reply.status, 404);
}
