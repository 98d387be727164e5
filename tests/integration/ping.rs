//! `ping/`, `ping/logged`, `ping/admin` and the `/api/v2/ping` redirect: the
//! authentication answers every route shares.

use serde_json::json;

use crate::node::TestNode;
use crate::support::READONLY;

const NAMED: &str = "name = \"ping-node\"\ndescription = \"a node for ping tests\"\n";

#[test]
fn missing_authorization_header_is_not_authenticated_even_on_ping() {
    let node = TestNode::start();
    for route in ["ping/", "ping/logged", "ping/admin"] {
        let reply = node.post_raw(route, b"{}", None);
        assert_eq!(reply.status, 401, "{route}: {}", reply.text);
        assert_eq!(
            reply.json,
            json!({"detail": "Not authenticated"}),
            "{route}"
        );
    }
}

#[test]
fn ping_answers_any_credentials_with_the_node_name_and_description() {
    let node = TestNode::with_config(NAMED);
    let (status, body) = node.post("ping/", json!({}), "admin", "not-the-password");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"name": "ping-node", "description": "a node for ping tests"})
    );
    let (status, _) = node.post("ping/", json!({}), "nobody-at-all", "x");
    assert_eq!(status, 200);
}

#[test]
fn ping_logged_refuses_a_wrong_password_with_a_basic_challenge() {
    let node = TestNode::start();
    let reply = node.send(
        node.client().post(node.url("ping/logged")).json(&json!({})),
        Some(("admin", "not-the-password")),
    );
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({"detail": "Incorrect username or password"})
    );
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Basic"));
}

#[test]
fn ping_logged_refuses_an_unknown_user() {
    let node = TestNode::start();
    let (status, body) = node.post("ping/logged", json!({}), "nobody-at-all", "x");
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Incorrect username or password"}));
}

#[test]
fn ping_logged_accepts_the_right_password() {
    let node = TestNode::with_config(NAMED);
    let (status, body) = node.post_admin("ping/logged", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "ping-node");
}

#[test]
fn ping_admin_needs_the_admin_level() {
    let node = TestNode::start();
    node.create_user("reader", "reader-pw", READONLY);
    let (status, body) = node.post("ping/logged", json!({}), "reader", "reader-pw");
    assert_eq!(status, 200, "a READONLY account may ping/logged: {body}");
    let reply = node.send(
        node.client().post(node.url("ping/admin")).json(&json!({})),
        Some(("reader", "reader-pw")),
    );
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.json["detail"],
        "The account 'reader' has level readonly; this route needs admin. Ask an \
         administrator of this node for an account with that level."
    );
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Basic"));
    let (status, body) = node.post_admin("ping/admin", json!({}));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn ping_without_trailing_slash_redirects_with_307() {
    let node = TestNode::start();
    let post = node.send(
        node.client().post(format!("{}/api/v2/ping", node.base)),
        None,
    );
    assert_eq!(post.status, 307);
    assert_eq!(post.header("location").as_deref(), Some("/api/v2/ping/"));
    let get = node.send(
        node.client().get(format!("{}/api/v2/ping", node.base)),
        None,
    );
    assert_eq!(get.status, 307);
    assert_eq!(get.header("location").as_deref(), Some("/api/v2/ping/"));
}
