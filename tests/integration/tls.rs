//! HTTPS: `quire tls init` makes a CA and a node certificate, `[tls]` makes the
//! node serve HTTPS only, clients trust the CA with `--ca-file` (local commands by
//! themselves), peers with `[tls] ca_file`, and an unusable certificate stops
//! start-up before anything is created.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::node::{TestNode, quire_command};

/// Runs `quire tls init` for a data directory under `parent`; returns the paths
/// of the CA, the node's certificate and its key.
fn tls_init(parent: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data_dir = parent.join("certs");
    let output = quire_command()
        .args(["tls", "init", "--hostname", "127.0.0.1", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tls = data_dir.join("tls");
    (
        tls.join("ca.pem"),
        tls.join("node.pem"),
        tls.join("node-key.pem"),
    )
}

fn tls_table(cert: &Path, key: &Path, ca: Option<&Path>) -> String {
    let mut text = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.to_str().unwrap(),
        key.to_str().unwrap()
    );
    if let Some(ca) = ca {
        text.push_str(&format!("ca_file = {:?}\n", ca.to_str().unwrap()));
    }
    text
}

fn client(ca: Option<&Path>) -> reqwest::blocking::Client {
    let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        let pem = fs::read(ca).unwrap();
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// The admin's `ping/` through `client`.
fn ping(client: &reqwest::blocking::Client, node: &TestNode, base: &str) -> reqwest::Result<Value> {
    client
        .post(format!("{base}/api/v2/ping/"))
        .basic_auth("admin", Some(&node.admin_password))
        .json(&json!({}))
        .send()?
        .json()
}

#[test]
fn a_node_with_a_certificate_serves_https_only_and_its_ca_is_trusted_where_given() {
    let scratch = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_init(scratch.path());
    let node = TestNode::with_config(&tls_table(&cert, &key, None));
    assert!(node.base.starts_with("https://127.0.0.1:"), "{}", node.base);

    let answer = ping(&client(Some(&ca)), &node, &node.base).expect("HTTPS with the CA");
    assert!(answer["name"].is_string(), "{answer}");
    let untrusted = ping(&client(None), &node, &node.base).unwrap_err();
    assert!(
        untrusted.is_connect(),
        "an unknown CA is refused: {untrusted}"
    );
    let plain = node.base.replace("https://", "http://");
    assert!(
        ping(&client(None), &node, &plain).is_err(),
        "no plain HTTP on an HTTPS node"
    );

    // The CLI: --ca-file for a URL; a local command finds the node by its data
    // directory and trusts nothing more than what it is given there.
    let run = |extra: &[&str]| {
        quire_command()
            .args([
                "ping",
                "--url",
                &node.base,
                "--password",
                &node.admin_password,
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let with_ca = run(&["--ca-file", ca.to_str().unwrap()]);
    assert!(
        with_ca.status.success(),
        "{}",
        String::from_utf8_lossy(&with_ca.stderr)
    );
    let without = run(&[]);
    assert!(!without.status.success());
    let told = String::from_utf8_lossy(&without.stderr);
    assert!(told.contains(&node.base), "{told}");
}

#[test]
fn local_commands_trust_the_ca_that_tls_init_made_for_the_node() {
    let node_dir = tempfile::tempdir().unwrap();
    let data_dir = node_dir.path().join("data");
    let output = quire_command()
        .args(["tls", "init", "--hostname", "127.0.0.1", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let told = String::from_utf8_lossy(&output.stdout);
    assert!(told.contains("cert_file = \"tls/node.pem\""), "{told}");
    for (file, mode) in [
        ("ca-key.pem", 0o600),
        ("node-key.pem", 0o600),
        ("ca.pem", 0o644),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let found = fs::metadata(data_dir.join("tls").join(file)).unwrap();
        assert_eq!(found.permissions().mode() & 0o777, mode, "{file}");
    }
    let again = quire_command()
        .args(["tls", "init", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!again.status.success(), "nothing is ever overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let config = node_dir.path().join("quire.toml");
    fs::write(
        &config,
        "[tls]\ncert_file = \"tls/node.pem\"\nkey_file = \"tls/node-key.pem\"\n",
    )
    .unwrap();
    let mut serve = quire_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let listen = data_dir.join("listen-address");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !listen.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ping = quire_command()
        .args(["ping", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    assert!(String::from_utf8_lossy(&ping.stdout).contains("https://127.0.0.1:"));
}

#[test]
fn a_peer_over_https_is_reached_with_the_ca_of_tls_ca_file() {
    let scratch = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_init(scratch.path());
    let b = TestNode::with_config(&tls_table(&cert, &key, None));
    let (host, port) = b.base.rsplit_once(':').unwrap();
    let add = |a: &TestNode, name: &str| {
        a.post_admin(
            "admin/librarians/add",
            json!({
                "librarian_name": name,
                "url": host,
                "port": port.parse::<u16>().unwrap(),
                "authenticator": format!("admin:{}", b.admin_password),
                "check_connection": true,
            }),
        )
    };
    let trusting = TestNode::with_config(&format!("[tls]\nca_file = {:?}\n", ca.to_str().unwrap()));
    let (status, reply) = add(&trusting, "site-b");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["success"], true, "{reply}");
    assert_eq!(reply["ping_success"], true, "{reply}");
    assert_eq!(reply["credentials_accepted"], true, "{reply}");

    let stranger = TestNode::start();
    let (status, reply) = add(&stranger, "site-b");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["ping_success"], false,
        "without the CA the peer is not trusted: {reply}"
    );
}

/// Runs `quire serve` with `config` on `data_dir` and waits for it to exit (it
/// must refuse to start).
fn serve_until_exit(config: &Path, data_dir: &Path) -> std::process::Output {
    quire_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[test]
fn an_unusable_certificate_stops_start_up_before_anything_is_created() {
    let scratch = tempfile::tempdir().unwrap();
    let (_, cert, _) = tls_init(scratch.path());
    let data_dir = scratch.path().join("data");
    let config = scratch.path().join("quire.toml");
    // The certificate given as its own key.
    fs::write(&config, tls_table(&cert, &cert, None)).unwrap();
    let output = serve_until_exit(&config, &data_dir);
    assert!(!output.status.success());
    let told = String::from_utf8_lossy(&output.stderr);
    assert!(told.contains("node.pem"), "names the file: {told}");
    assert!(told.contains("tls.key_file"), "says what to change: {told}");
    assert!(!data_dir.join("quire.redb").exists(), "nothing was created");

    fs::write(
        &config,
        format!("[tls]\ncert_file = {:?}\n", cert.to_str().unwrap()),
    )
    .unwrap();
    let output = serve_until_exit(&config, &data_dir);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("tls.key_file"),
        "a certificate without its key is a configuration error"
    );
}
