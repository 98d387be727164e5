//! Two nodes that clone to each other's liking: A sends to B with `send_clone`,
//! `consume_queue` and `check_consumed_queue`; B stores with `recieve_clone` and
//! calls A back. B may serve HTTPS (a CA and certificate from `quire tls init`),
//! which A trusts with `[tls] ca_file`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::node::Node;
use super::quire_binary;

/// A (the sender) and B (the destination).
pub struct Peers {
    pub a: Node,
    pub b: Node,
    /// B's CA, when B serves HTTPS.
    pub b_ca: Option<PathBuf>,
}

impl Peers {
    /// Starts A under `root/a` and B under `root/b` and registers each with the
    /// other; `batch` is A's send_batch_size.
    pub fn start(root: &Path, tls: bool, batch: u64) -> Peers {
        let (a_root, b_root) = (root.join("a"), root.join("b"));
        for dir in [&a_root, &b_root] {
            std::fs::create_dir_all(dir).expect("creating a node's root");
        }
        let b_data = b_root.join("data");
        let mut b_config = String::from(
            "name = \"site-b\"\nlocal_hostnames = [\"site-b.invalid\"]\n\
             max_search_results = 1000000\n",
        );
        let b_ca = tls.then(|| {
            let status = Command::new(quire_binary())
                .args(["tls", "init", "--hostname", "127.0.0.1", "--data-dir"])
                .arg(&b_data)
                .output()
                .expect("running quire tls init");
            assert!(status.status.success(), "quire tls init failed");
            let tls_dir = b_data.join("tls");
            b_config.push_str(&format!(
                "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                tls_dir.join("node.pem").display(),
                tls_dir.join("node-key.pem").display()
            ));
            tls_dir.join("ca.pem")
        });
        b_config.push_str(
            "[[stores]]\nname = \"main\"\npath = \"store\"\n\
             [[tasks.recieve_clone]]\ntask_name = \"receive\"\nevery = \"1000h\"\n\
             files_per_run = 1000000\n",
        );
        let mut a_config = String::from("name = \"site-a\"\nmax_search_results = 1000000\n");
        if let Some(ca) = &b_ca {
            a_config.push_str(&format!("[tls]\nca_file = \"{}\"\n", ca.display()));
        }
        a_config.push_str(&format!(
            "[[stores]]\nname = \"main\"\npath = \"store\"\n\
             [[tasks.send_clone]]\ntask_name = \"send\"\nevery = \"1000h\"\n\
             destination_librarian = \"site-b\"\nage_in_days = 1\nsend_batch_size = {batch}\n\
             [[tasks.consume_queue]]\ntask_name = \"consume\"\nevery = \"1000h\"\n\
             [[tasks.check_consumed_queue]]\ntask_name = \"check\"\nevery = \"1000h\"\n"
        ));
        let b = Node::start_with_config(&b_root, Some(&b_config));
        let a = Node::start_with_config(&a_root, Some(&a_config));
        b.cli(&[
            "users",
            "create",
            "site-a",
            "--level",
            "readappend",
            "--set-password",
            "a-at-b-password",
        ]);
        a.cli(&[
            "users",
            "create",
            "site-b",
            "--level",
            "callback",
            "--set-password",
            "b-at-a-password",
        ]);
        let (b_url, b_port) = address(&b);
        a.cli(&[
            "librarians",
            "add",
            "site-b",
            &b_url,
            "--port",
            &b_port,
            "--peer-user",
            "site-a",
            "--peer-password",
            "a-at-b-password",
        ]);
        let (a_url, a_port) = address(&a);
        b.cli(&[
            "librarians",
            "add",
            "site-a",
            &a_url,
            "--port",
            &a_port,
            "--peer-user",
            "site-b",
            "--peer-password",
            "b-at-a-password",
        ]);
        Peers { a, b, b_ca }
    }

    /// The timed work of one clone, as a shell command: A's three tasks, then B's.
    pub fn round(&self) -> Command {
        let quire = quire_binary();
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                r#"q="$1"; a="$2"; b="$3"
                   "$q" tasks run send --json --data-dir "$a" >/dev/null &&
                   "$q" tasks run consume --json --data-dir "$a" >/dev/null &&
                   "$q" tasks run check --json --data-dir "$a" >/dev/null &&
                   "$q" tasks run receive --json --data-dir "$b""#,
                "sh",
            ])
            .arg(quire)
            .arg(self.a.data_dir())
            .arg(self.b.data_dir());
        command
    }

    /// A's outgoing transfers to B: (completed, all).
    pub fn completed_at_a(&self) -> (u64, u64) {
        let text = self.a.cli(&["transfers", "--json"]);
        let summary: serde_json::Value = serde_json::from_str(&text).expect("transfers --json");
        let peer = &summary["peers"][0];
        let count = |state: &str| peer[state]["files"].as_u64().unwrap_or(0);
        let all = ["queued", "in_flight", "staged", "completed", "failed"]
            .iter()
            .map(|s| count(s))
            .sum();
        (count("completed"), all)
    }
}

/// The `url` (scheme and host) and port of a node, from its listen-address file.
fn address(node: &Node) -> (String, String) {
    let text = std::fs::read_to_string(node.data_dir().join("listen-address"))
        .expect("reading listen-address");
    let text = text.trim();
    let (scheme, host_port) = text.split_once("://").unwrap_or(("http", text));
    let (host, port) = host_port.rsplit_once(':').expect("host:port");
    (format!("{scheme}://{host}"), port.to_string())
}
