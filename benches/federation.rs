//! Network clones between two quire nodes on loopback, from `send_clone` to
//! COMPLETED on both sides (A's three send tasks, then B's `recieve_clone`, which
//! stores the files and calls A back), against physical baselines measured in
//! the same run:
//!
//! - `large`: one file of QUIRE_BENCH_SIZE (default 1G) with `quire_http` over
//!   plain HTTP, against `curl -o DST URL && sync` fetching the same file from
//!   nginx (Debian's `nginx-light` or `nginx`; sendfile on) on loopback. Target 0.7.
//! - `tls`: the same with B serving HTTPS (its certificate from `quire tls init`),
//!   against nginx serving that certificate and `curl --cacert`. Target 0.7.
//! - `small`: QUIRE_BENCH_FILES (default 10,000) files of QUIRE_BENCH_FILE_SIZE
//!   (default 4K), in files per second, against `rsync -a SRC/
//!   rsync://127.0.0.1:PORT/bench/DST/ && sync` into a local rsync daemon (Debian's
//!   `rsync`). Target 1.0.
//! - `rate`: with `quire librarians max-rate site-b 10MB/s`, the time
//!   `consume_queue` takes to move a 200 MiB file (QUIRE_BENCH_RATE_SIZE), as a
//!   rate against the cap. Target: within 10% of it.
//!
//! Each pair uploads fresh files at A (untimed), so every round sends new files;
//! after it (untimed) A must count every file of the pair COMPLETED and B must
//! record them with A's checksums (a sample).
//!
//! `cargo bench --bench federation`; QUIRE_BENCH_ONLY=large,tls,small,rate picks
//! variants; QUIRE_BENCH_PAIRS (default 3), QUIRE_BENCH_DIR, QUIRE_BENCH_BINARY
//! as for the other benchmarks.

// Each benchmark uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::measure::{Series, Work, print_summary, run_timed};
use common::peers::Peers;
use common::tree::{FILES_PER_DIR, relative_name, write_random_tree};
use common::{PAIRS_VAR, RandomBytes, Scratch, env_count};

const ONLY_VAR: &str = "QUIRE_BENCH_ONLY";

fn main() {
    let only = std::env::var(ONLY_VAR).unwrap_or_else(|_| "large,tls,small,rate".into());
    let wanted = |name: &str| only.split(',').any(|w| w.trim() == name);
    require("curl", "--version", "curl");
    let scratch = Scratch::new();
    common::print_header("federation (send_clone to COMPLETED, A -> B)", &scratch);
    let pairs = env_count(PAIRS_VAR, 3).max(1);
    if wanted("large") {
        large(scratch.path(), pairs, false);
    }
    if wanted("tls") {
        large(scratch.path(), pairs, true);
    }
    if wanted("small") {
        small(scratch.path(), pairs);
    }
    if wanted("rate") {
        rate(scratch.path());
    }
    println!("load average at end: {}", common::load_average());
    scratch.finish();
}

/// Fails early, saying how to get it, unless `program` runs.
fn require(program: &str, version_flag: &str, package: &str) {
    let found = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        panic!(
            "this benchmark's baseline runs {program}, which is not installed: \
             `sudo apt-get install {package}`, then run it again"
        );
    }
}

/// A port free on loopback just now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something listens on `port`.
fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server process of the baseline, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx serving `root` on a free loopback port, with TLS from `tls` (certificate,
/// key) if given. Returns the server and its base URL.
fn nginx(work: &Path, root: &Path, tls: Option<(&Path, &Path)>) -> (Server, String) {
    require("nginx", "-v", "nginx-light");
    let dir = work.join(if tls.is_some() { "nginx-tls" } else { "nginx" });
    fs::create_dir_all(dir.join("tmp")).expect("creating nginx's directory");
    let port = free_port();
    let user = if rustix::process::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    let (listen, certificate) = match tls {
        Some((cert, key)) => (
            format!("{port} ssl"),
            format!(
                "ssl_certificate {};\nssl_certificate_key {};\n",
                cert.display(),
                key.display()
            ),
        ),
        None => (port.to_string(), String::new()),
    };
    let tmp = dir.join("tmp");
    let config = format!(
        "{user}daemon off;\nworker_processes 1;\npid {pid};\nerror_log {log};\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n sendfile on;\n tcp_nopush on;\n\
          client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n\
          fastcgi_temp_path {tmp}/fastcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n\
          scgi_temp_path {tmp}/scgi;\n\
          server {{\n  listen 127.0.0.1:{listen};\n  {certificate}  root {root};\n }}\n}}\n",
        pid = dir.join("nginx.pid").display(),
        log = dir.join("error.log").display(),
        tmp = tmp.display(),
        root = root.display(),
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, config).expect("writing nginx.conf");
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .spawn()
        .expect("starting nginx");
    wait_for_port(port, "nginx", &mut child);
    let scheme = if tls.is_some() { "https" } else { "http" };
    (Server(child), format!("{scheme}://127.0.0.1:{port}"))
}

/// Writes `size` random bytes to `path` and syncs them.
fn write_random_file(path: &Path, size: u64) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("creating its directory");
    let mut file = fs::File::create(path).expect("creating the source file");
    let mut random = RandomBytes::new();
    let mut buffer = vec![0u8; 8 << 20];
    let mut left = size;
    while left > 0 {
        let n = buffer.len().min(left as usize);
        random.fill(&mut buffer[..n]);
        file.write_all(&buffer[..n])
            .expect("writing the source file");
        left -= n as u64;
    }
    file.sync_all().expect("syncing the source file");
}

/// Checks (untimed) that A counts `expected` transfers, all COMPLETED, and that B
/// records `name` with A's checksum.
fn check_pair(peers: &Peers, expected: u64, name: &str) {
    let (completed, all) = peers.completed_at_a();
    assert_eq!(
        (completed, all),
        (expected, expected),
        "A counts {completed} of {all} transfers COMPLETED, {expected} expected"
    );
    let (at_a, _) = peers.a.stored(name);
    let (at_b, _) = peers.b.stored(name);
    assert_eq!(at_a, at_b, "B records {name} with another checksum");
}

fn large(scratch: &Path, pairs: u64, tls: bool) {
    let label = if tls { "tls" } else { "large" };
    let size = env_count("QUIRE_BENCH_SIZE", 1 << 30);
    println!("== variant {label}: one file of {size} bytes, {pairs} pairs");
    let root = scratch.join(label);
    let source_dir = root.join("source");
    let source = source_dir.join("big.dat");
    write_random_file(&source, size);
    let peers = Peers::start(&root.join("nodes"), tls, 128);
    let b_tls = peers.b.data_dir().join("tls");
    let certificate = tls.then(|| (b_tls.join("node.pem"), b_tls.join("node-key.pem")));
    let (_server, url) = nginx(
        &root,
        &source_dir,
        certificate
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path())),
    );
    let work = Work {
        amount: size as f64 / (1 << 20) as f64,
        unit: "MiB",
    };
    let curl = if tls {
        "sh -c 'curl --cacert CA -o DST URL && sync' (nginx, TLS)"
    } else {
        "sh -c 'curl -o DST URL && sync' (nginx)"
    };
    let mut baseline = Series::new("baseline", curl);
    let mut quire = Series::new(
        "quire_http",
        "quire tasks run send, consume, check at A; receive at B",
    );
    for pair in 1..=pairs {
        println!("pair {pair}:");
        let destination = root.join(format!("baseline-{pair}.dat"));
        let mut command = Command::new("sh");
        command.args([
            "-c",
            r#"curl -sS --fail ${3:+--cacert "$3"} -o "$1" "$2" && sync"#,
            "sh",
        ]);
        command
            .arg(&destination)
            .arg(format!("{url}/big.dat"))
            .arg(peers.b_ca.as_deref().unwrap_or(Path::new("")));
        let run = run_timed("curl", &mut command, None);
        baseline.record(&run, &work);
        assert_eq!(
            fs::metadata(&destination).map(|m| m.len()).unwrap_or(0),
            size,
            "curl fetched the whole file"
        );
        let name = format!("pair-{pair}/big.dat");
        peers
            .a
            .cli(&["upload", source.to_str().expect("UTF-8"), &name]);
        let run = run_timed("the clone", &mut peers.round(), Some(&peers.a));
        quire.record(&run, &work);
        check_pair(&peers, pair, &name);
    }
    print_summary(&work, &baseline, &[&quire], 0.7);
    let Peers { mut a, mut b, .. } = peers;
    a.stop();
    b.stop();
}

/// An rsync daemon on a free port with one writable module, `bench`, at `path`.
fn rsync_daemon(work: &Path, path: &Path) -> (Server, u16) {
    require("rsync", "--version", "rsync");
    fs::create_dir_all(path).expect("creating the rsync module");
    let port = free_port();
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let config = work.join("rsyncd.conf");
    fs::write(
        &config,
        format!(
            "pid file = {}\nuse chroot = no\nuid = {uid}\ngid = {gid}\n\
             [bench]\npath = {}\nread only = false\n",
            work.join("rsyncd.pid").display(),
            path.display()
        ),
    )
    .expect("writing rsyncd.conf");
    let mut child = Command::new("rsync")
        .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--config={}", config.display()))
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the rsync daemon");
    wait_for_port(port, "rsync --daemon", &mut child);
    (Server(child), port)
}

fn small(scratch: &Path, pairs: u64) {
    let files = env_count("QUIRE_BENCH_FILES", 10_000).max(1);
    let size = env_count("QUIRE_BENCH_FILE_SIZE", 4096);
    println!(
        "== variant small: {files} files of {size} bytes ({FILES_PER_DIR} per directory), \
         {pairs} pairs"
    );
    let root = scratch.join("small");
    let source = root.join("source");
    write_random_tree(&source, files, size);
    let (_daemon, port) = rsync_daemon(&root, &root.join("rsync"));
    let peers = Peers::start(&root.join("nodes"), false, 1000);
    let work = Work {
        amount: files as f64,
        unit: "files",
    };
    let mut baseline = Series::new(
        "baseline",
        "sh -c 'rsync -a SRC/ rsync://127.0.0.1:PORT/bench/DST/ && sync'",
    );
    let mut quire = Series::new(
        "quire_http",
        "quire tasks run send, consume, check at A; receive at B",
    );
    for pair in 1..=pairs {
        println!("pair {pair}:");
        let mut command = Command::new("sh");
        command
            .args(["-c", r#"rsync -a "$1/" "$2" && sync"#, "sh"])
            .arg(&source)
            .arg(format!("rsync://127.0.0.1:{port}/bench/pair-{pair}/"));
        let run = run_timed("rsync", &mut command, None);
        baseline.record(&run, &work);
        let prefix = format!("pair-{pair}");
        peers.a.cli(&[
            "upload",
            "--batch",
            source.to_str().expect("UTF-8"),
            &prefix,
        ]);
        let run = run_timed("the clone", &mut peers.round(), Some(&peers.a));
        quire.record(&run, &work);
        let sample = format!("{prefix}/{}", relative_name(files / 2));
        check_pair(&peers, files * pair, &sample);
    }
    print_summary(&work, &baseline, &[&quire], 1.0);
    let Peers { mut a, mut b, .. } = peers;
    a.stop();
    b.stop();
}

fn rate(scratch: &Path) {
    let size = env_count("QUIRE_BENCH_RATE_SIZE", 200 << 20);
    let cap: u64 = 10_000_000;
    println!("== variant rate: one file of {size} bytes with max-rate {cap} bytes/s");
    let root = scratch.join("rate");
    let source = root.join("source/capped.dat");
    write_random_file(&source, size);
    let peers = Peers::start(&root.join("nodes"), false, 128);
    peers
        .a
        .cli(&["librarians", "max-rate", "site-b", &cap.to_string()]);
    peers
        .a
        .cli(&["upload", source.to_str().expect("UTF-8"), "capped.dat"]);
    peers.a.cli(&["tasks", "run", "send", "--json"]);
    let mut consume = Command::new(common::quire_binary());
    consume
        .args(["tasks", "run", "consume", "--json", "--data-dir"])
        .arg(peers.a.data_dir());
    let run = run_timed("consume_queue", &mut consume, Some(&peers.a));
    let measured = size as f64 / run.wall;
    let ratio = measured / cap as f64;
    println!(
        "  consume_queue moved {size} bytes in {:.2} s: {:.2} MB/s against a cap of {:.2} MB/s \
         (ratio {ratio:.3}; target 0.90..1.10: {})",
        run.wall,
        measured / 1e6,
        cap as f64 / 1e6,
        if (0.9..=1.1).contains(&ratio) {
            "meets it"
        } else {
            "is OUTSIDE it"
        }
    );
    peers.a.cli(&["tasks", "run", "check", "--json"]);
    peers.b.cli(&["tasks", "run", "receive", "--json"]);
    check_pair(&peers, 1, "capped.dat");
    let Peers { mut a, mut b, .. } = peers;
    a.stop();
    b.stop();
}
