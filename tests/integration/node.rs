//! `TestNode`: a real `quire serve` process on 127.0.0.1:0 in a fresh temporary
//! directory, with a blocking HTTP client that speaks to it.
//!
//! Invariants: every node has its own data directory; the child process is killed
//! when the `TestNode` is dropped; the only waiting loop is the one for the
//! `listen-address` file, and it has a deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;
use serde_json::Value;
use tempfile::TempDir;

/// How long a node may take to start listening (argon2 in a debug build is slow).
const START_DEADLINE: Duration = Duration::from_secs(120);
/// How long a node may take to stop after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(60);
/// Prefix of every route.
pub const API: &str = "/api/v2";

/// The path of the `quire` binary cargo built for this package.
pub fn quire_binary() -> &'static str {
    env!("CARGO_BIN_EXE_quire")
}

/// A `quire` command with no `QUIRE_*` settings inherited from the environment.
pub fn quire_command() -> Command {
    let mut command = Command::new(quire_binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("QUIRE_") {
            command.env_remove(key);
        }
    }
    command
}

/// An answer from the node.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The raw body.
    pub text: String,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
}

impl Reply {
    fn read(response: reqwest::blocking::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().expect("reading a response body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_string())
    }
}

/// A running (or stopped) quire node.
pub struct TestNode {
    /// Holds everything: data directory, config file, logs.
    pub dir: TempDir,
    /// `--data-dir` (canonical path).
    pub data_dir: PathBuf,
    config: Option<PathBuf>,
    /// Environment variables of every `quire serve` this node runs.
    env: Vec<(String, String)>,
    /// A command (and its arguments) that runs every `quire serve` of this node,
    /// e.g. in another mount namespace; empty to run it directly.
    wrapper: Vec<String>,
    child: Option<Child>,
    /// `--listen` of the next start: port 0 until a restart keeps the address.
    listen: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The generated password of the `admin` account.
    pub admin_password: String,
    client: Client,
}

impl TestNode {
    /// Starts a node on the built-in defaults.
    pub fn start() -> TestNode {
        TestNode::start_with(None)
    }

    /// Starts a node with this TOML configuration text (if any).
    pub fn start_with(config: Option<&str>) -> TestNode {
        TestNode::start_with_env(config, &[])
    }

    /// Starts a node with a configuration text (if any) and environment variables
    /// (e.g. `QUIRE_LOG`), which restarts keep.
    pub fn start_with_env(config: Option<&str>, env: &[(&str, &str)]) -> TestNode {
        TestNode::start_wrapped(config, env, Vec::new())
    }

    /// Starts a node whose `quire serve` runs as the last argument of `wrapper`
    /// (restarts too), with a configuration text and environment variables.
    pub fn start_wrapped(
        config: Option<&str>,
        env: &[(&str, &str)],
        wrapper: Vec<String>,
    ) -> TestNode {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let root = fs::canonicalize(dir.path()).expect("canonical temp dir");
        let data_dir = root.join("data");
        let config = config.map(|text| {
            let path = root.join("quire.toml");
            fs::write(&path, text).expect("writing the config file");
            path
        });
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .build()
            .expect("building an HTTP client");
        let mut node = TestNode {
            dir,
            data_dir,
            config,
            env: env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            wrapper,
            child: None,
            listen: "127.0.0.1:0".into(),
            base: String::new(),
            admin_password: String::new(),
            client,
        };
        node.launch();
        node.admin_password = fs::read_to_string(node.data_dir.join("admin-password"))
            .expect("reading the admin password")
            .trim()
            .to_string();
        node
    }

    /// Starts with a config text; shorthand for `start_with(Some(text))`.
    pub fn with_config(text: &str) -> TestNode {
        TestNode::start_with(Some(text))
    }

    fn launch(&mut self) {
        let listen_file = self.data_dir.join("listen-address");
        // A killed node leaves its old address behind.
        let _ = fs::remove_file(&listen_file);
        let log = |name: &str| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(name))
                .expect("opening a log file")
        };
        let mut command = quire_command();
        if let [program, arguments @ ..] = self.wrapper.as_slice() {
            let direct = command;
            command = Command::new(program);
            command.args(arguments).arg(direct.get_program());
            for (key, value) in direct.get_envs() {
                match value {
                    Some(value) => command.env(key, value),
                    None => command.env_remove(key),
                };
            }
        }
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(&self.listen)
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        let mut child = command.spawn().expect("spawning quire serve");
        let address = wait_for_listen_address(&listen_file, &mut child, self.dir.path());
        self.child = Some(child);
        // An HTTPS node writes its scheme; a plain one only host:port.
        self.base = if address.contains("://") {
            address
        } else {
            format!("http://{address}")
        };
    }

    /// Stops the node with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            signal(&child, rustix::process::Signal::TERM);
            let status = wait_with_deadline(child, STOP_DEADLINE);
            assert!(status.success(), "quire exited with {status} on SIGTERM");
        }
    }

    /// Kills the node (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the node gracefully and starts it again on the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts the node again after `stop()` or `kill()` on the address it had, so
    /// that peers that know it find it again.
    pub fn start_again_at_same_address(&mut self) {
        assert!(self.child.is_none(), "the node is still running");
        self.listen = self
            .base
            .rsplit_once("://")
            .map_or(self.base.clone(), |(_, address)| address.to_string());
        self.launch();
    }

    /// Starts the node again after `stop()` or `kill()`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the node is still running");
        self.launch();
    }

    /// Root of the default store (`<data>/store`).
    pub fn store_root(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The full URL of an API route (`route` without the `/api/v2/` prefix).
    pub fn url(&self, route: &str) -> String {
        format!("{}{API}/{route}", self.base)
    }

    /// The admin credentials.
    pub fn admin(&self) -> (&str, &str) {
        ("admin", self.admin_password.as_str())
    }

    /// POSTs `body` as JSON with Basic credentials; returns status and JSON body.
    pub fn post(&self, route: &str, body: Value, user: &str, pass: &str) -> (u16, Value) {
        let reply = self.send(
            self.client.post(self.url(route)).json(&body),
            Some((user, pass)),
        );
        (reply.status, reply.json)
    }

    /// POSTs `body` as JSON with the admin's credentials.
    pub fn post_admin(&self, route: &str, body: Value) -> (u16, Value) {
        let (user, pass) = self.admin();
        self.post(route, body, user, pass)
    }

    /// POSTs raw bytes as `application/json`, with optional credentials.
    pub fn post_raw(&self, route: &str, body: &[u8], auth: Option<(&str, &str)>) -> Reply {
        let request = self
            .client
            .post(self.url(route))
            .header("content-type", "application/json")
            .body(body.to_vec());
        self.send(request, auth)
    }

    /// Sends a request built from the client (for GET, PUT, or odd paths).
    pub fn send(&self, request: RequestBuilder, auth: Option<(&str, &str)>) -> Reply {
        let request = match auth {
            Some((user, pass)) => request.basic_auth(user, Some(pass)),
            None => request,
        };
        match request.send() {
            Ok(response) => Reply::read(response),
            Err(error) => panic!(
                "request to the node failed: {error}\nnode output:\n{}",
                read_logs(self.dir.path())
            ),
        }
    }

    /// The HTTP client (no redirects followed).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs the `quire` CLI against this node as admin (`--url`, `--user` and
    /// `--password` follow `args`).
    pub fn cli(&self, args: &[&str]) -> Output {
        quire_command()
            .args(args)
            .args(["--url", &self.base, "--user", "admin"])
            .args(["--password", &self.admin_password])
            .stdin(Stdio::null())
            .output()
            .expect("running quire")
    }

    /// What the node has written to its standard error (its log) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (with a deadline) until `path` holds the node's `host:port`; fails early,
/// with the node's output, if the process exits first.
pub fn wait_for_listen_address(path: &Path, child: &mut Child, logs: &Path) -> String {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            let address = text.trim();
            if !address.is_empty() {
                return address.to_string();
            }
        }
        if let Some(status) = child.try_wait().expect("polling the child") {
            panic!(
                "quire exited with {status} before listening:\n{}",
                read_logs(logs)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("quire did not start listening within {START_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_logs(dir: &Path) -> String {
    ["stdout.log", "stderr.log"]
        .iter()
        .map(|name| fs::read_to_string(dir.join(name)).unwrap_or_default())
        .collect()
}

/// Sends `signal` to the child process.
pub fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child has a pid");
    rustix::process::kill_process(pid, signal).expect("signalling the node");
}

/// Waits for the child to exit; kills it if it has not after `deadline`.
pub fn wait_with_deadline(mut child: Child, deadline: Duration) -> std::process::ExitStatus {
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    match receiver.recv_timeout(deadline) {
        Ok(status) => status.expect("waiting for the node"),
        Err(_) => {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            panic!("quire did not exit within {deadline:?}");
        }
    }
}
