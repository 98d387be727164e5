//! `users/*`: accounts, and the credential cache that every change to an account
//! must invalidate (the node remembers verified passwords for
//! `credential_cache_seconds`, 300 by default, so a stale entry would still work).

use serde_json::json;

use crate::node::TestNode;
use crate::support::{ADMIN, READONLY};

/// `ping/logged` as `user`: 200 when the credentials are valid.
fn logged(node: &TestNode, user: &str, pass: &str) -> u16 {
    node.post("ping/logged", json!({}), user, pass).0
}

#[test]
fn users_create_answers_201_and_a_duplicate_is_400() {
    let node = TestNode::start();
    let body = json!({"username": "carol", "password": "carol-pw", "permission": READONLY});
    let (status, reply) = node.post_admin("users/create", body.clone());
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply, json!({"success": true, "username": "carol"}));
    let (status, reply) = node.post_admin("users/create", body);
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("already exists"),
        "{reply}"
    );
    assert_eq!(logged(&node, "carol", "carol-pw"), 200);
}

#[test]
fn users_create_refuses_unusable_names_and_empty_passwords() {
    let node = TestNode::start();
    for (username, password) in [("", "pw"), ("a:b", "pw"), ("fine", "")] {
        let body = json!({"username": username, "password": password, "permission": READONLY});
        let (status, reply) = node.post_admin("users/create", body);
        assert_eq!(status, 400, "{username:?}/{password:?}: {reply}");
    }
    let (status, reply) = node.post_admin("users/list", json!({}));
    assert_eq!(status, 200);
    assert_eq!(reply["users"].as_array().unwrap().len(), 1, "{reply}");
}

#[test]
fn users_create_refuses_an_unknown_permission_with_422() {
    let node = TestNode::start();
    let body = json!({"username": "odd", "password": "pw", "permission": 7});
    let (status, reply) = node.post_admin("users/create", body);
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["detail"][0]["loc"], json!(["body", "permission"]));
}

#[test]
fn users_get_answers_the_level_and_unknown_users_are_400() {
    let node = TestNode::start();
    node.create_user("carol", "carol-pw", READONLY);
    let (status, reply) = node.post_admin("users/get", json!({"username": "carol"}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"username": "carol", "permission": READONLY}));
    let (status, reply) = node.post_admin("users/get", json!({"username": "nobody"}));
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("nobody"),
        "{reply}"
    );
}

#[test]
fn users_list_shows_every_account_and_its_level() {
    let node = TestNode::start();
    node.create_user("carol", "carol-pw", READONLY);
    let (status, reply) = node.post_admin("users/list", json!({}));
    assert_eq!(status, 200, "{reply}");
    let mut users = reply["users"].as_array().unwrap().clone();
    users.sort_by_key(|u| u["username"].as_str().unwrap().to_string());
    assert_eq!(
        users,
        [
            json!({"username": "admin", "permission": ADMIN}),
            json!({"username": "carol", "permission": READONLY}),
        ]
    );
}

#[test]
fn user_routes_need_the_admin_level() {
    let node = TestNode::start();
    node.create_user("carol", "carol-pw", READONLY);
    let routes = [
        ("users/list", json!({})),
        ("users/get", json!({"username": "admin"})),
        (
            "users/create",
            json!({"username": "x", "password": "x", "permission": ADMIN}),
        ),
        (
            "users/update",
            json!({"username": "carol", "permission": ADMIN}),
        ),
        ("users/delete", json!({"username": "admin"})),
    ];
    for (route, body) in routes {
        let (status, reply) = node.post(route, body, "carol", "carol-pw");
        assert_eq!(status, 401, "{route}: {reply}");
    }
    let (status, reply) = node.post_admin("users/get", json!({"username": "carol"}));
    assert_eq!(
        (status, reply["permission"].clone()),
        (200, json!(READONLY))
    );
}

#[test]
fn users_update_password_invalidates_the_cached_old_password() {
    let node = TestNode::start();
    node.create_user("carol", "old-pw", READONLY);
    assert_eq!(logged(&node, "carol", "old-pw"), 200, "now cached");
    let body = json!({"username": "carol", "password": "new-pw"});
    let (status, reply) = node.post_admin("users/update", body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"success": true, "username": "carol"}));
    assert_eq!(
        logged(&node, "carol", "old-pw"),
        401,
        "the old password must stop working"
    );
    assert_eq!(logged(&node, "carol", "new-pw"), 200);
}

#[test]
fn users_update_permission_takes_effect_despite_the_cache() {
    let node = TestNode::start();
    node.create_user("carol", "carol-pw", READONLY);
    let (status, _) = node.post("ping/admin", json!({}), "carol", "carol-pw");
    assert_eq!(
        status, 401,
        "READONLY is not ADMIN (and carol is now cached)"
    );
    let body = json!({"username": "carol", "permission": ADMIN});
    let (status, reply) = node.post_admin("users/update", body);
    assert_eq!(status, 200, "{reply}");
    let (status, _) = node.post("ping/admin", json!({}), "carol", "carol-pw");
    assert_eq!(status, 200, "the new level applies at once");
    let (status, reply) = node.post_admin("users/update", json!({"username": "nobody"}));
    assert_eq!(status, 400, "{reply}");
}

#[test]
fn users_delete_removes_access_at_once_and_unknown_users_are_400() {
    let node = TestNode::start();
    node.create_user("dave", "dave-pw", READONLY);
    assert_eq!(logged(&node, "dave", "dave-pw"), 200, "now cached");
    let (status, reply) = node.post_admin("users/delete", json!({"username": "dave"}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"success": true, "username": "dave"}));
    assert_eq!(
        logged(&node, "dave", "dave-pw"),
        401,
        "a deleted account must stop working"
    );
    let (status, reply) = node.post_admin("users/delete", json!({"username": "dave"}));
    assert_eq!(status, 400, "{reply}");
    let (status, _) = node.post_admin("users/get", json!({"username": "dave"}));
    assert_eq!(status, 400);
}

#[test]
fn deleting_the_last_admin_is_400_but_another_admin_can_be_deleted() {
    let node = TestNode::start();
    let (status, reply) = node.post_admin("users/delete", json!({"username": "admin"}));
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("last administrator"),
        "{reply}"
    );
    node.create_user("second-admin", "second-pw", ADMIN);
    let (status, reply) = node.post(
        "users/delete",
        json!({"username": "admin"}),
        "second-admin",
        "second-pw",
    );
    assert_eq!(status, 200, "{reply}");
    let (status, _) = node.post_admin("ping/logged", json!({}));
    assert_eq!(status, 401, "the deleted admin is locked out");
}

#[test]
fn demoting_the_last_admin_is_400() {
    let node = TestNode::start();
    let (status, reply) = node.post_admin(
        "users/update",
        json!({"username": "admin", "permission": 1}),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("last administrator"),
        "{reply}"
    );
    let (status, _) = node.post_admin("ping/admin", json!({}));
    assert_eq!(status, 200, "the admin keeps its level");
}

#[test]
fn password_update_with_a_wrong_current_password_is_400() {
    let node = TestNode::start();
    node.create_user("erin", "erin-pw", READONLY);
    let body = json!({"password": "not-erin-pw", "new_password": "next"});
    let (status, reply) = node.post("users/password_update", body, "erin", "erin-pw");
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("wrong"),
        "{reply}"
    );
    assert_eq!(logged(&node, "erin", "erin-pw"), 200, "unchanged");
}

#[test]
fn password_update_changes_the_callers_own_password() {
    let node = TestNode::start();
    node.create_user("erin", "erin-pw", READONLY);
    let body = json!({"password": "erin-pw", "new_password": "erin-new"});
    let (status, reply) = node.post("users/password_update", body, "erin", "erin-pw");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"success": true, "username": "erin"}));
    assert_eq!(
        logged(&node, "erin", "erin-pw"),
        401,
        "the old password must stop working"
    );
    assert_eq!(logged(&node, "erin", "erin-new"), 200);
}

#[test]
fn a_known_account_below_a_routes_level_is_told_both_levels() {
    let node = TestNode::start();
    node.create_user("bob", "bob-pw", READONLY);
    let stage = json!({
        "upload_size": 1,
        "upload_checksum": "md5:::0cc175b9c0f1b6a831c399e269772661",
        "upload_name": "a",
        "destination_location": "a",
        "uploader": "bob",
    });
    let (status, reply) = node.post("upload/stage", stage.clone(), "bob", "bob-pw");
    assert_eq!(status, 401, "the protocol's status stays: {reply}");
    assert_eq!(
        reply,
        json!({"detail": "The account 'bob' has level readonly; this route needs readappend. \
                          Ask an administrator of this node for an account with that level."})
    );
    let (status, reply) = node.post("users/list", json!({}), "bob", "bob-pw");
    assert_eq!(status, 401, "{reply}");
    let detail = reply["detail"].as_str().unwrap();
    assert!(detail.contains("needs admin"), "{detail}");

    // Wrong credentials say nothing about the account, whether it exists or not.
    for (user, pass) in [("bob", "not-bobs"), ("nobody-here", "x")] {
        let (status, reply) = node.post("upload/stage", stage.clone(), user, pass);
        assert_eq!(status, 401, "{user}: {reply}");
        assert_eq!(
            reply,
            json!({"detail": "Incorrect username or password"}),
            "{user}"
        );
    }
}
