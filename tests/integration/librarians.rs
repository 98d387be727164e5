//! The peer registry: `admin/librarians/*` between two real nodes, the sealed
//! credentials and their key file, and `quire librarians`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

use crate::node::{TestNode, quire_command};
use crate::support::{ADMIN, READAPPEND};

/// A password distinctive enough to search for in the database file.
const PEER_PASSWORD: &str = "Peer-Pass-7f3c9a1e-never-stored-plain";
/// The account node A uses on node B.
const PEER_USER: &str = "site-a";

/// The port a node listens on.
fn port(node: &TestNode) -> u16 {
    node.base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the base URL")
}

/// A port on loopback where nothing listens.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn add_body(name: &str, port: u16, check: bool) -> Value {
    json!({
        "librarian_name": name,
        "url": "http://127.0.0.1",
        "port": port,
        "authenticator": format!("{PEER_USER}:{PEER_PASSWORD}"),
        "check_connection": check,
    })
}

/// `admin/librarians/list` as admin; returns the list.
fn list(node: &TestNode, ping: bool) -> Vec<Value> {
    let (status, listed) = node.post_admin("admin/librarians/list", json!({"ping": ping}));
    assert_eq!(status, 200, "{listed}");
    listed["librarians"].as_array().expect("librarians").clone()
}

/// Node B, with an account for node A; node A, which knows B as `site-b`.
fn two_nodes() -> (TestNode, TestNode) {
    let b = TestNode::start();
    b.create_user(PEER_USER, PEER_PASSWORD, READAPPEND);
    let a = TestNode::start();
    let (status, added) = a.post_admin("admin/librarians/add", add_body("site-b", port(&b), true));
    assert_eq!(status, 200, "{added}");
    // `credentials_accepted` is a quire addition: the peer took the password.
    assert_eq!(
        added,
        json!({"success": true, "already_exists": false, "ping_success": true,
               "credentials_accepted": true})
    );
    (a, b)
}

fn stderr_log(node: &TestNode) -> String {
    fs::read_to_string(node.dir.path().join("stderr.log")).unwrap_or_default()
}

#[test]
fn a_live_peer_is_added_listed_as_available_and_a_duplicate_is_already_exists() {
    let (a, b) = two_nodes();
    let duplicate = add_body("site-b", port(&b), true);
    let (status, again) = a.post_admin("admin/librarians/add", duplicate);
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again,
        json!({"success": false, "already_exists": true, "ping_success": false})
    );

    let peers = list(&a, true);
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(
        peers[0],
        json!({"name": "site-b", "url": "http://127.0.0.1", "port": port(&b),
               "available": true, "enabled": true})
    );
    // Without a ping, availability is unknown (null), as in the reference.
    assert_eq!(list(&a, false)[0]["available"], Value::Null);
    // A wrong password is still added (the reference only checks reachability),
    // but the answer says the peer refused it.
    let mut wrong = add_body("site-b-wrong", port(&b), true);
    wrong["authenticator"] = json!(format!("{PEER_USER}:not-the-password"));
    let (status, added) = a.post_admin("admin/librarians/add", wrong);
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["success"], true);
    assert_eq!(added["credentials_accepted"], false);
    // The request's `ping` defaults to true.
    let (status, listed) = a.post_admin("admin/librarians/list", json!({}));
    assert_eq!(status, 200);
    assert_eq!(listed["librarians"][0]["available"], true);
    assert_eq!(listed["librarians"][1]["name"], "site-b-wrong");
}

#[test]
fn a_dead_peer_is_not_added_with_a_check_and_is_unavailable_without_one() {
    let a = TestNode::start();
    let dead = dead_port();
    let (status, refused) = a.post_admin("admin/librarians/add", add_body("site-z", dead, true));
    assert_eq!(status, 200, "{refused}");
    assert_eq!(
        refused,
        json!({"success": false, "already_exists": false, "ping_success": false})
    );
    assert!(
        list(&a, false).is_empty(),
        "nothing is added when the ping fails"
    );

    let (status, added) = a.post_admin("admin/librarians/add", add_body("site-z", dead, false));
    assert_eq!(status, 200);
    assert_eq!(
        added,
        json!({"success": true, "already_exists": false, "ping_success": null})
    );
    let peers = list(&a, true);
    assert_eq!(peers[0]["name"], "site-z");
    assert_eq!(peers[0]["available"], false);
    assert_eq!(list(&a, false)[0]["available"], Value::Null);
}

#[test]
fn bad_addresses_and_authenticators_are_400_with_a_reason() {
    let a = TestNode::start();
    let cases = [
        ("url", json!("http://127.0.0.1:8080"), "port"),
        ("url", json!("127.0.0.1"), "scheme"),
        ("url", json!("ftp://127.0.0.1"), "scheme"),
        ("port", json!(0), "port"),
        ("port", json!(70000), "port"),
        ("authenticator", json!("no-colon"), "user:password"),
        ("librarian_name", json!(" "), "name"),
    ];
    for (field, value, word) in cases {
        let mut body = add_body("site-x", 1, false);
        body[field] = value.clone();
        let (status, reply) = a.post_admin("admin/librarians/add", body);
        assert_eq!(status, 400, "{field}={value}: {reply}");
        let reason = reply["reason"].as_str().expect("a reason");
        assert!(reason.contains(word), "{field}={value}: {reason}");
        assert!(reply["suggested_remedy"].is_string(), "{reply}");
    }
    assert!(list(&a, false).is_empty());
    // A body that does not match the schema is the usual 422.
    let (status, reply) = a.post_admin("admin/librarians/add", json!({"librarian_name": "x"}));
    assert_eq!(status, 422, "{reply}");
}

#[test]
fn unknown_peers_are_400_and_transfers_can_be_switched() {
    let a = TestNode::start();
    let change = json!({"librarian_name": "nobody", "transfers_enabled": false});
    let (status, reply) = a.post_admin("admin/librarians/transfer_status/change", change);
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("nobody does not exist")
    );
    let (status, reply) = a.post_admin(
        "admin/librarians/remove",
        json!({"librarian_name": "nobody"}),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(reply["reason"].as_str().unwrap().contains("does not exist"));

    a.post_admin("admin/librarians/add", add_body("site-y", 1, false));
    let change = json!({"librarian_name": "site-y", "transfers_enabled": false});
    let (status, reply) = a.post_admin("admin/librarians/transfer_status/change", change);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"librarian_name": "site-y", "transfers_enabled": false})
    );
    assert_eq!(list(&a, false)[0]["enabled"], false);
    // The reference client posts to `transfer_status/set`; quire answers it too.
    let change = json!({"librarian_name": "site-y", "transfers_enabled": true});
    let (status, reply) = a.post_admin("admin/librarians/transfer_status/set", change);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(list(&a, false)[0]["enabled"], true);
}

#[test]
fn remove_forgets_the_peer_and_counts_cancelled_transfers() {
    let a = TestNode::start();
    a.post_admin("admin/librarians/add", add_body("site-y", 1, false));
    a.post_admin("admin/librarians/add", add_body("site-w", 1, false));
    let (status, removed) = a.post_admin(
        "admin/librarians/remove",
        json!({"librarian_name": "site-y", "remove_outgoing_transfers": true}),
    );
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        removed,
        json!({"success": true, "number_of_transfers_removed": 0})
    );
    // `remove_outgoing_transfers` defaults to false.
    let (status, removed) = a.post_admin(
        "admin/librarians/remove",
        json!({"librarian_name": "site-w"}),
    );
    assert_eq!(status, 200, "{removed}");
    assert!(list(&a, false).is_empty());
    // Gone means the name can be added again.
    let (_, added) = a.post_admin("admin/librarians/add", add_body("site-y", 2, false));
    assert_eq!(added["success"], true, "{added}");
}

#[test]
fn the_registry_routes_need_the_admin_level() {
    let a = TestNode::start();
    a.create_user("writer", "writer-pw", 4);
    a.create_user("boss", "boss-pw", ADMIN);
    let routes = [
        ("admin/librarians/add", add_body("site-y", 1, false)),
        ("admin/librarians/list", json!({"ping": false})),
        (
            "admin/librarians/remove",
            json!({"librarian_name": "site-y"}),
        ),
        (
            "admin/librarians/transfer_status/change",
            json!({"librarian_name": "site-y", "transfers_enabled": true}),
        ),
    ];
    for (route, body) in &routes {
        let (status, reply) = a.post(route, body.clone(), "writer", "writer-pw");
        assert_eq!(status, 401, "{route}: {reply}");
        let detail = reply["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("The account 'writer' has level readwrite; this route needs admin."),
            "{route}: {detail}"
        );
    }
    let (status, reply) = a.post(routes[0].0, routes[0].1.clone(), "boss", "boss-pw");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["success"], true);
}

#[test]
fn credentials_are_sealed_with_a_private_key_file_that_survives_restarts() {
    let (mut a, b) = two_nodes();
    let key_file = a.data_dir.join("peer-secret.key");
    let key = fs::read(&key_file).expect("the key file exists");
    assert_eq!(key.len(), 65, "64 hex digits and a newline");
    let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Neither the password nor the key is in the database, its log or its output.
    a.stop();
    let database = fs::read(a.data_dir.join("quire.redb")).unwrap();
    let contains = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    };
    assert!(!contains(&database, PEER_PASSWORD.as_bytes()));
    assert!(!contains(&database, &key[..64]));
    let logs = stderr_log(&a) + &fs::read_to_string(a.dir.path().join("stdout.log")).unwrap();
    assert!(!logs.contains(PEER_PASSWORD));
    assert!(!logs.contains(std::str::from_utf8(&key[..64]).unwrap()));

    // After a restart the same key unseals the credentials: the peer is pinged
    // with a client built from them.
    a.start_again();
    assert_eq!(fs::read(&key_file).unwrap(), key, "the key is reused");
    assert_eq!(list(&a, true)[0]["available"], true);
    drop(b);
}

#[test]
fn credentials_are_never_logged_even_at_trace_level() {
    use base64::Engine;
    let trace = [("QUIRE_LOG", "trace")];
    let b = TestNode::start_with_env(None, &trace);
    b.create_user(PEER_USER, PEER_PASSWORD, READAPPEND);
    let a = TestNode::start_with_env(None, &trace);
    let (status, added) = a.post_admin("admin/librarians/add", add_body("site-b", port(&b), true));
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["credentials_accepted"], true, "{added}");
    // Unsealed into a client, and used, once more.
    assert_eq!(list(&a, true)[0]["available"], true);
    let key = fs::read_to_string(a.data_dir.join("peer-secret.key")).unwrap();
    let key = key.trim();
    assert_eq!(key.len(), 64);

    let basic = |user: &str, password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let secrets = [
        PEER_PASSWORD.to_string(),
        basic(PEER_USER, PEER_PASSWORD),
        key.to_string(),
        basic("admin", &a.admin_password),
        basic("admin", &b.admin_password),
    ];
    for (node, log) in [("a", stderr_log(&a)), ("b", stderr_log(&b))] {
        assert!(
            log.contains("TRACE"),
            "node {node} logged at trace level:\n{log}"
        );
        for secret in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "node {node} logged a secret"
            );
        }
    }
}

#[test]
fn a_missing_key_file_is_reported_and_a_restored_one_is_used_without_restart() {
    let (mut a, b) = two_nodes();
    let key_file = a.data_dir.join("peer-secret.key");
    let aside = a.dir.path().join("key-backup");
    a.stop();
    fs::rename(&key_file, &aside).unwrap();
    a.start_again();
    assert!(!key_file.exists(), "no new key replaces the lost one");
    assert!(
        stderr_log(&a).contains("peer key file"),
        "a warning at start-up:\n{}",
        stderr_log(&a)
    );
    // The peer cannot be used: unavailable, and new credentials cannot be sealed.
    assert_eq!(list(&a, true)[0]["available"], false);
    let (status, reply) = a.post_admin("admin/librarians/add", add_body("site-c", 1, false));
    assert_eq!(status, 500, "{reply}");
    let reason = reply["reason"].as_str().unwrap();
    assert!(
        reason.contains("missing") && reason.contains("restore"),
        "{reason}"
    );

    fs::rename(&aside, &key_file).unwrap();
    assert_eq!(list(&a, true)[0]["available"], true);
    drop(b);
}

#[test]
fn the_key_file_location_is_configurable() {
    let a = TestNode::with_config("peer_key_file = \"secrets-peer.key\"\n");
    a.post_admin("admin/librarians/add", add_body("site-y", 1, false));
    assert!(a.data_dir.join("secrets-peer.key").is_file());
    assert!(!a.data_dir.join("peer-secret.key").exists());
}

/// Runs `quire librarians ARGS` against `node` as admin, with `stdin` as input.
fn cli(node: &TestNode, args: &[&str], stdin: &str) -> Output {
    let mut child = quire_command()
        .arg("librarians")
        .args(args)
        .args(["--url", &node.base, "--user", "admin"])
        .args(["--password", node.admin().1])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_cli_adds_lists_switches_and_removes_peers() {
    let b = TestNode::start();
    b.create_user(PEER_USER, PEER_PASSWORD, READAPPEND);
    let a = TestNode::start();
    let b_port = port(&b).to_string();

    // The password comes from stdin when it is not a terminal.
    let add = [
        "add",
        "site-b",
        "http://127.0.0.1",
        "--port",
        &b_port,
        "--peer-user",
        PEER_USER,
    ];
    let added = cli(&a, &add, &format!("{PEER_PASSWORD}\n"));
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stdout).contains("answered ping/"));

    let again = cli(&a, &add, &format!("{PEER_PASSWORD}\n"));
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("quire librarians remove site-b"),
        "{}",
        text(&again.stderr)
    );

    let mut wrong = add.to_vec();
    wrong[1] = "site-b-wrong";
    let warned = cli(&a, &wrong, "not-the-password\n");
    assert!(warned.status.success(), "{}", text(&warned.stderr));
    assert!(
        text(&warned.stderr).contains("refused the password of its account 'site-a'"),
        "{}",
        text(&warned.stderr)
    );
    cli(&a, &["remove", "site-b-wrong"], "");

    let listed = cli(&a, &["list", "--ping"], "");
    let table = text(&listed.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|line| line.contains("site-b")
                && line.contains("enabled")
                && line.trim_end().ends_with("yes        -")),
        "{table}"
    );

    let switched = cli(&a, &["transfers", "site-b", "disable", "--json"], "");
    assert!(switched.status.success(), "{}", text(&switched.stderr));
    let answer: Value = serde_json::from_slice(&switched.stdout).unwrap();
    assert_eq!(answer["transfers_enabled"], false);
    let listed: Value = serde_json::from_slice(&cli(&a, &["list", "--json"], "").stdout).unwrap();
    assert_eq!(listed["librarians"][0]["enabled"], false);
    assert_eq!(listed["librarians"][0]["available"], Value::Null);

    let bad = cli(
        &a,
        &["add", "x", "http://h:1", "--port", "1", "--peer-user", "u"],
        "pw\n",
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("includes a port"),
        "{}",
        text(&bad.stderr)
    );

    let removed = cli(&a, &["remove", "site-b"], "");
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert!(text(&removed.stdout).contains("--remove-outgoing-transfers"));
    let unknown = cli(&a, &["transfers", "site-b", "enable"], "");
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("site-b does not exist"),
        "{}",
        text(&unknown.stderr)
    );
    let empty = cli(&a, &[], "");
    assert!(text(&empty.stdout).contains("no peer librarians are known"));
}
