//! A real `quire serve` node in the scratch directory, found by the CLI through
//! `--data-dir`, and stopped with SIGTERM when the benchmark ends (or panics).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::quire_binary;

/// How long the node may take to write its listen address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the node may take to stop after SIGTERM before it is killed; longer
/// than the node's own 30 s grace for requests in flight.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// A running node started by this benchmark.
pub struct Node {
    /// The `quire serve` child; `None` once stopped.
    child: Option<Child>,
    data_dir: PathBuf,
    /// Where the node's stdout and stderr go (a pipe could fill up and stall it).
    log: PathBuf,
}

impl Node {
    /// Starts `quire serve --data-dir ROOT/data --listen 127.0.0.1:0` and waits until
    /// it has written `listen-address`.
    pub fn start(root: &Path) -> Node {
        Node::start_with_config(root, None)
    }

    /// Like [`Node::start`], with `config` (TOML text) written to ROOT/quire.toml and
    /// passed with `--config`.
    pub fn start_with_config(root: &Path, config: Option<&str>) -> Node {
        let data_dir = root.join("data");
        let log = root.join("node.log");
        let out = File::create(&log).expect("creating the node log");
        let err = out.try_clone().expect("cloning the node log handle");
        let started = Instant::now();
        let mut command = Command::new(quire_binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(text) = config {
            let path = root.join("quire.toml");
            fs::write(&path, text).expect("writing the node's configuration");
            command.arg("--config").arg(path);
        }
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} serve: {e}", quire_binary().display()));
        let mut node = Node {
            child: Some(child),
            data_dir,
            log,
        };
        let address = node.wait_for_address(started);
        println!(
            "node: pid {}, {}{address}, data dir {}, ready in {:.2} s",
            node.pid(),
            if address.contains("://") {
                ""
            } else {
                "http://"
            },
            node.data_dir.display(),
            started.elapsed().as_secs_f64()
        );
        node
    }

    fn wait_for_address(&mut self, started: Instant) -> String {
        let path = self.data_dir.join("listen-address");
        loop {
            // The node writes the file by rename, so a non-empty read is complete.
            if let Ok(text) = fs::read_to_string(&path)
                && !text.trim().is_empty()
                && self.data_dir.join("admin-password").exists()
            {
                return text.trim().to_string();
            }
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("quire serve exited with {status}:\n{}", self.log_text());
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "quire serve wrote no listen address in {START_TIMEOUT:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// CPU seconds (user + system) the node has used so far, from /proc/PID/stat.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the parenthesised command name: state is 0, utime 11, stime 12.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks / per_second
    }

    /// Runs the `quire` CLI against this node with `--data-dir`; returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(quire_binary())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run quire {args:?}: {e}"));
        if !output.status.success() {
            panic!(
                "quire {args:?} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// What the node recorded for file `name` (via `quire search --json`): its
    /// checksum and the path of its first instance.
    pub fn stored(&self, name: &str) -> (String, PathBuf) {
        let text = self.cli(&["search", "--name", name, "--json"]);
        let found: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("quire search printed no JSON ({e}): {text}"));
        let checksum = found[0]["checksum"].as_str();
        let path = found[0]["instances"][0]["path"].as_str();
        match (checksum, path) {
            (Some(checksum), Some(path)) => (checksum.to_string(), PathBuf::from(path)),
            _ => panic!("the node has no stored instance of {name}: {text}"),
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM to the node this benchmark started (by its pid) and waits for
    /// it; kills it only if it does not stop in time.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let started = Instant::now();
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    println!(
                        "node: stopped with SIGTERM in {:.1} s ({status})",
                        started.elapsed().as_secs_f64()
                    );
                    return;
                }
                Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    println!("node: did not stop within {STOP_TIMEOUT:?}; killed it");
                    return;
                }
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}
