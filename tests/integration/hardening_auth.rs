//! Logins under attack: an unknown account costs what a wrong password costs,
//! failed logins are limited per address and per (account, address) with 429 and
//! `Retry-After`, a flood from one address never refuses the real user elsewhere,
//! and every route checks the caller before it reads the body.

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;

use crate::node::{Reply, TestNode};
use crate::support::READONLY;

/// Limits high enough that no test of timing is throttled.
const NO_LIMITS: &str = "[http]\nlogin_address_burst = 100000\nlogin_account_burst = 100000\n";

/// A client whose connections come from `address` (any of 127.0.0.0/8).
fn client_from(address: &str) -> Client {
    Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

/// `ping/logged` as `user` from `client`.
fn login(node: &TestNode, client: &Client, user: &str, pass: &str) -> Reply {
    node.send(
        client.post(node.url("ping/logged")).json(&json!({})),
        Some((user, pass)),
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn an_unknown_account_takes_as_long_as_a_wrong_password() {
    let node = TestNode::with_config(NO_LIMITS);
    node.create_user("carol", "carol-pw", READONLY);
    let client = client_from("127.0.0.1");
    let timed = |user: &str, pass: &str| {
        let started = Instant::now();
        let reply = login(&node, &client, user, pass);
        assert_eq!(reply.status, 401, "{user}: {}", reply.text);
        started.elapsed()
    };
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so that load on the machine falls on both alike.
    for attempt in 0..11 {
        wrong.push(timed("carol", &format!("guess-{attempt}")));
        unknown.push(timed(&format!("nobody-{attempt}"), "guess"));
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    eprintln!("median unknown account {unknown:?}, wrong password {wrong:?}, ratio {ratio:.2}");
    assert!(
        (0.5..=2.0).contains(&ratio),
        "median unknown account {unknown:?} against wrong password {wrong:?} (ratio {ratio:.2})"
    );
}

#[test]
fn failed_logins_are_limited_per_account_and_per_address_with_429() {
    let node = TestNode::with_config(
        "[http]\nlogin_address_burst = 5\nlogin_address_refill = \"1h\"\n\
         login_account_burst = 3\nlogin_account_refill = \"1h\"\n",
    );
    node.create_user("carol", "carol-pw", READONLY);
    let client = client_from("127.0.0.1");
    for attempt in 0..3 {
        let reply = login(&node, &client, "carol", &format!("guess-{attempt}"));
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    let refused = login(&node, &client, "carol", "guess-3");
    assert_eq!(refused.status, 429, "{}", refused.text);
    let wait: u64 = refused
        .header("retry-after")
        .expect("a 429 says when to retry")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
    let reason = refused.json["reason"].as_str().unwrap();
    assert!(reason.contains("for this account"), "{reason}");
    // The address has two failures left, whatever the account names.
    for user in ["nobody-1", "nobody-2"] {
        assert_eq!(login(&node, &client, user, "x").status, 401);
    }
    let refused = login(&node, &client, "nobody-3", "x");
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.header("retry-after").is_some());
    let reason = refused.json["reason"].as_str().unwrap();
    assert!(reason.contains("from your address"), "{reason}");
    // The same account from another address is not refused.
    let elsewhere = client_from("127.0.0.2");
    assert_eq!(login(&node, &elsewhere, "carol", "carol-pw").status, 200);
    assert_eq!(login(&node, &elsewhere, "carol", "wrong").status, 401);
}

#[test]
fn the_real_user_logs_in_during_a_flood_of_wrong_passwords_from_another_address() {
    // No credential cache: every login of the real user verifies its password.
    let node = TestNode::with_config(
        "credential_cache_seconds = 0\n[http]\nlogin_address_burst = 4\n\
         login_address_refill = \"1h\"\nlogin_account_burst = 2\nlogin_account_refill = \"1h\"\n",
    );
    node.create_user("carol", "carol-pw", READONLY);
    let node = Arc::new(node);
    let flood: Vec<_> = (0..6)
        .map(|thread_index| {
            let node = Arc::clone(&node);
            thread::spawn(move || {
                let attacker = client_from("127.0.0.2");
                (0..6)
                    .map(|attempt| {
                        let guess = format!("guess-{thread_index}-{attempt}");
                        login(&node, &attacker, "carol", &guess).status
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let user = client_from("127.0.0.1");
    for _ in 0..3 {
        let reply = login(&node, &user, "carol", "carol-pw");
        assert_eq!(
            reply.status, 200,
            "the real user during the flood: {}",
            reply.text
        );
    }
    let statuses: Vec<u16> = flood
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert_eq!(refused + checked, statuses.len(), "{statuses:?}");
    assert!(
        checked <= 2,
        "only the pair's budget is checked: {statuses:?}"
    );
    let reply = login(&node, &user, "carol", "carol-pw");
    assert_eq!(
        reply.status, 200,
        "the real user after the flood: {}",
        reply.text
    );
}

/// Every route path declared in the router (`{transfer_id}` filled in).
fn declared_routes() -> Vec<String> {
    let source = include_str!("../../src/http/mod.rs");
    let mut routes: Vec<String> = source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| literal.starts_with('/') && literal.len() > 1)
        .map(|route| route.replace("{transfer_id}", "1"))
        .collect();
    routes.sort();
    routes.dedup();
    assert!(routes.len() > 40, "{routes:?}");
    routes
}

/// Sends a malformed JSON body to `route` with every method it answers; returns
/// (method, status) for the methods it has.
fn probe(node: &TestNode, route: &str, auth: Option<(&str, &str)>) -> Vec<(&'static str, u16)> {
    let url = format!("{}/api/v2{route}", node.base);
    let mut answered = Vec::new();
    for method in ["GET", "POST", "PUT"] {
        let request = node
            .client()
            .request(method.parse().unwrap(), &url)
            .header("content-type", "application/json")
            .body(r#"{"upload_size": "not a number", "#);
        let reply = node.send(request, auth);
        if reply.status != 405 {
            answered.push((method, reply.status));
        }
    }
    assert!(!answered.is_empty(), "{route} answers no method");
    answered
}

#[test]
fn every_route_refuses_a_wrong_caller_before_it_reads_the_body() {
    let node = TestNode::with_config(NO_LIMITS);
    node.create_user("rita", "rita-pw", READONLY);
    let readonly_routes = [
        "/ping/",
        "/ping/logged",
        "/search/file",
        "/validate/file",
        "/users/password_update",
    ];
    for route in declared_routes() {
        if route == "/ping" {
            continue; // a redirect to /ping/, with no body read
        }
        for (method, status) in probe(&node, &route, None) {
            assert_eq!(status, 401, "{method} {route} without credentials");
        }
        for (method, status) in probe(&node, &route, Some(("nobody", "wrong"))) {
            let expected = if route == "/ping/" { 200 } else { 401 };
            assert_eq!(status, expected, "{method} {route} with wrong credentials");
        }
        for (method, status) in probe(&node, &route, Some(("rita", "rita-pw"))) {
            if readonly_routes.contains(&route.as_str()) {
                assert_ne!(status, 401, "{method} {route} as a READONLY account");
            } else {
                assert_eq!(status, 401, "{method} {route} as a READONLY account");
            }
        }
    }
}
