//! `quire upload` as a user runs it: what its summary says (the recorded checksum,
//! the provider), `--batch` re-runs (identical files skipped, changed ones
//! reported as conflicts with both checksums, links and special files listed as
//! skipped), and resuming an interrupted upload (a connection cut mid-body, the
//! node killed mid-stream, Ctrl-C) by running the same command again.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use quire::cli::output::human_size;
use quire::model::Algorithm;
use serde_json::{Value, json};

use crate::node::{TestNode, quire_command, signal};
use crate::support::{ALWAYS_REHASH, checksum, directory_checksum, transfer_id};

/// How long a condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(120);

fn payload(size: usize, seed: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the CLI, which must succeed; returns its standard output.
fn cli_ok(node: &TestNode, args: &[&str]) -> String {
    let output = node.cli(args);
    assert!(
        output.status.success(),
        "quire {args:?} failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// Waits until `condition` holds, failing after `DEADLINE`.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every copy of `name` re-hashed by the node matches its record.
fn assert_verifies(node: &TestNode, name: &str, bytes: &[u8]) {
    assert_eq!(fs::read(node.store_root().join(name)).unwrap(), bytes);
    assert_eq!(
        node.file_record(name)["checksum"],
        checksum(Algorithm::Xxh3, bytes)
    );
    let (status, rows) = node.post_admin("validate/file", json!({ "file_name": name }));
    assert_eq!(status, 200, "{rows}");
    let rows = rows.as_array().expect("a list of copies");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["computed_same_checksum"], true, "{rows:?}");
}

#[test]
fn the_summary_shows_the_recorded_checksum_and_the_provider_in_lower_case() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bin");
    let small_bytes = payload(5000, 1);
    fs::write(&small, &small_bytes).unwrap();
    let xxh3 = checksum(Algorithm::Xxh3, &small_bytes);

    let copied = cli_ok(&node, &["upload", path_arg(&small), "s/copied"]);
    assert!(copied.contains(&xxh3), "{copied}");
    assert!(copied.contains("via local)"), "{copied}");
    let streamed = cli_ok(
        &node,
        &[
            "upload",
            "--provider",
            "network",
            path_arg(&small),
            "s/streamed",
        ],
    );
    assert!(streamed.contains(&xxh3), "{streamed}");
    assert!(streamed.contains("via network)"), "{streamed}");

    // Large enough that the CLI declares BLAKE3 and the node computes the md5.
    let big = dir.path().join("big.bin");
    let big_bytes = payload((8 << 20) + 1, 2);
    fs::write(&big, &big_bytes).unwrap();
    let md5 = checksum(Algorithm::Md5, &big_bytes);
    for (provider, name) in [
        ("auto", "b/auto"),
        ("network", "b/net"),
        ("local", "b/local"),
    ] {
        let args = [
            "upload",
            "--checksum",
            "md5",
            "--provider",
            provider,
            path_arg(&big),
            name,
        ];
        let summary = cli_ok(&node, &args);
        assert!(summary.contains(&md5), "{provider}: {summary}");
        assert!(!summary.contains("blake3"), "{provider}: {summary}");
        assert_eq!(node.file_record(name)["checksum"], md5);
    }
    let json_args = [
        "upload",
        "--json",
        "--checksum",
        "md5",
        path_arg(&big),
        "b/json",
    ];
    let report: Value = serde_json::from_str(&cli_ok(&node, &json_args)).unwrap();
    assert_eq!(report["checksum"], md5, "{report}");
    assert_eq!(
        report["verified_checksum"],
        checksum(Algorithm::Blake3, &big_bytes),
        "{report}"
    );
    assert_eq!(report["resumed_bytes"], 0, "{report}");

    // A directory: the node records the directory rule's md5.
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    let (one, two) = (payload(5 << 20, 3), payload(4 << 20, 4));
    fs::write(tree.join("one"), &one).unwrap();
    fs::write(tree.join("sub/two"), &two).unwrap();
    let tree_md5 = directory_checksum(Algorithm::Md5, &[&one, &two]);
    for (provider, name) in [("local", "d/local"), ("network", "d/net")] {
        let args = [
            "upload",
            "--checksum",
            "md5",
            "--provider",
            provider,
            path_arg(&tree),
            name,
        ];
        let summary = cli_ok(&node, &args);
        assert!(summary.contains(&tree_md5), "{provider}: {summary}");
        assert!(summary.contains(&format!("via {provider})")), "{summary}");
        assert_eq!(node.file_record(name)["checksum"], tree_md5);
    }
}

#[test]
fn a_single_upload_of_a_taken_name_says_whether_the_contents_differ() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.dat");
    fs::write(&file, b"first version").unwrap();
    cli_ok(&node, &["upload", path_arg(&file), "x.dat"]);
    let same = node.cli(&["upload", "--checksum", "md5", path_arg(&file), "x.dat"]);
    assert!(!same.status.success());
    let recorded = checksum(Algorithm::Xxh3, b"first version");
    assert!(
        stderr(&same).contains(&format!("with the same contents ({recorded})")),
        "{}",
        stderr(&same)
    );
    fs::write(&file, b"second version").unwrap();
    let changed = node.cli(&["upload", path_arg(&file), "x.dat"]);
    assert!(!changed.status.success());
    let local = checksum(Algorithm::Xxh3, b"second version");
    assert!(
        stderr(&changed).contains(&format!("(local {local}, recorded {recorded})")),
        "{}",
        stderr(&changed)
    );
}

/// A tree with two small files, one file large enough to be staged, a symbolic
/// link and a named pipe.
fn batch_tree(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    fs::create_dir_all(root.join("sub")).unwrap();
    let (a, b, big) = (
        root.join("a.txt"),
        root.join("sub/b.txt"),
        root.join("big.bin"),
    );
    fs::write(&a, b"alpha").unwrap();
    fs::write(&b, b"bravo").unwrap();
    fs::write(&big, payload(300 << 10, 5)).unwrap();
    std::os::unix::fs::symlink(&a, root.join("sub/link")).unwrap();
    let fifo = root.join("pipe");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    (a, b, big)
}

#[test]
fn a_batch_rerun_reports_changed_files_as_conflicts_with_both_checksums() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let (a, _, big) = batch_tree(&root);
    let first: Value = serde_json::from_str(&cli_ok(
        &node,
        &["upload", "--batch", "--json", path_arg(&root), "t"],
    ))
    .unwrap();
    assert_eq!(first["uploaded"], 3, "{first}");
    let old_big = fs::read(&big).unwrap();
    let (old_a_sum, old_big_sum) = (
        checksum(Algorithm::Xxh3, b"alpha"),
        checksum(Algorithm::Xxh3, &old_big),
    );

    // Change a small file (sent by batch_put) and the large one (staged), keeping
    // the large one's size.
    fs::write(&a, b"alpha, changed").unwrap();
    fs::write(&big, payload(300 << 10, 6)).unwrap();
    let new_big = fs::read(&big).unwrap();
    let (new_a_sum, new_big_sum) = (
        checksum(Algorithm::Xxh3, b"alpha, changed"),
        checksum(Algorithm::Xxh3, &new_big),
    );
    let rerun = node.cli(&["upload", "--batch", path_arg(&root), "t"]);
    assert!(!rerun.status.success(), "a conflict fails the command");
    let (out, err) = (stdout(&rerun), stderr(&rerun));
    assert!(
        out.contains("uploaded 0 files")
            && out.contains("1 already on the node")
            && out.contains("2 conflicts")
            && out.contains("2 skipped"),
        "{out}"
    );
    for (path, name, local, recorded) in [
        (&a, "t/a.txt", &new_a_sum, &old_a_sum),
        (&big, "t/big.bin", &new_big_sum, &old_big_sum),
    ] {
        let line = format!(
            "conflict: {} differs from '{name}' on the node (local {local}, recorded {recorded}",
            path.display()
        );
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    }
    assert!(err.contains("names are never reused"), "{err}");

    // Declaring another algorithm: compared (and reported) in the recorded one.
    let json_rerun = node.cli(&[
        "upload",
        "--batch",
        "--json",
        "--checksum",
        "md5",
        path_arg(&root),
        "t",
    ]);
    assert!(!json_rerun.status.success());
    let summary: Value = serde_json::from_str(&stdout(&json_rerun)).unwrap();
    assert_eq!(summary["uploaded"], 0, "{summary}");
    assert_eq!(summary["already_existed"], 1, "{summary}");
    let conflicts = summary["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 2, "{summary}");
    let a_conflict = conflicts.iter().find(|c| c["name"] == "t/a.txt").unwrap();
    assert_eq!(
        a_conflict,
        &json!({
            "path": a.display().to_string(),
            "name": "t/a.txt",
            "local_checksum": new_a_sum,
            "recorded_checksum": old_a_sum,
            "local_size": 14,
            "recorded_size": 5,
        })
    );
    assert_eq!(
        fs::read(node.store_root().join("t/a.txt")).unwrap(),
        b"alpha"
    );
    assert_eq!(
        fs::read(node.store_root().join("t/big.bin")).unwrap(),
        old_big
    );
}

#[test]
fn a_batch_lists_and_counts_skipped_links_and_special_files() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    batch_tree(&root);
    let output = node.cli(&["upload", "--batch", path_arg(&root), "t"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        out.contains("uploaded 3 files") && out.contains("2 skipped"),
        "{out}"
    );
    let link = root.join("sub/link");
    assert!(
        err.contains(&format!("skipped {}: a symbolic link", link.display())),
        "{err}"
    );
    let pipe = root.join("pipe");
    assert!(
        err.contains(&format!("skipped {}: not a regular file", pipe.display())),
        "{err}"
    );
    let (status, _) = node.search_name("t/sub/link");
    assert_eq!(status, 404, "a link is not uploaded");

    let again = node.cli(&["upload", "--batch", "--json", path_arg(&root), "t"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let summary: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(summary["already_existed"], 3, "{summary}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{summary}");
    assert!(
        skipped
            .iter()
            .any(|s| s["path"] == link.display().to_string()
                && s["reason"].as_str().unwrap().contains("symbolic link")),
        "{summary}"
    );
}

#[test]
fn batch_answers_for_a_taken_name_carry_the_recorded_checksum_and_size() {
    let node = TestNode::start();
    node.upload("taken", b"recorded bytes");
    let recorded = crate::support::md5(b"recorded bytes");
    let mine = checksum(Algorithm::Xxh3, b"other bytes!");
    let (status, staged) = node.post_admin(
        "upload/batch_stage",
        json!({"uploads": [crate::support::stage_body("taken", 12, &mine, "ann")]}),
    );
    assert_eq!(status, 201, "{staged}");
    let error = &staged["uploads"][0]["error"];
    assert_eq!(error["status"], 409, "{staged}");
    assert_eq!(error["recorded_checksum"], recorded, "{staged}");
    assert_eq!(error["recorded_size"], 14, "{staged}");

    let manifest = quire::protocol::upload::UploadBatchPutManifest {
        uploader: "ann".into(),
        deletion_policy: String::new(),
        files: vec![quire::protocol::upload::UploadBatchPutFile {
            name: "taken".into(),
            size: 12,
            checksum: mine,
        }],
    };
    let body = quire::protocol::upload::batch_put_body(&manifest, &[b"other bytes!"]);
    let request = node.client().put(node.url("upload/batch_put")).body(body);
    let reply = node.send(request, Some(node.admin()));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let error = &reply.json["files"][0]["error"];
    assert_eq!(error["status"], 409, "{}", reply.text);
    assert_eq!(error["recorded_checksum"], recorded, "{}", reply.text);
    assert_eq!(error["recorded_size"], 14, "{}", reply.text);
}

/// `host:port` of a node.
fn address(node: &TestNode) -> String {
    node.base.trim_start_matches("http://").to_string()
}

/// Stages `name` exactly as `quire upload FILE name` does as admin (xxh3, the
/// last component as upload name, the account as uploader).
fn stage_like_the_cli(node: &TestNode, name: &str, bytes: &[u8]) -> Value {
    let upload_name = name.rsplit('/').next().unwrap();
    let (status, staged) = node.post_admin(
        "upload/stage",
        json!({
            "upload_size": bytes.len(),
            "upload_checksum": checksum(Algorithm::Xxh3, bytes),
            "upload_name": upload_name,
            "destination_location": name,
            "uploader": "admin",
        }),
    );
    assert_eq!(status, 201, "{staged}");
    staged
}

/// Opens `PUT upload/stream/{id}` declaring `declared` bytes and sends `part` of
/// them; the caller decides what happens to the rest.
fn start_stream(node: &TestNode, id: u64, offset: u64, declared: usize, part: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(address(node)).unwrap();
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", node.admin_password));
    let head = format!(
        "PUT /api/v2/upload/stream/{id}?offset={offset} HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Basic {credentials}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n",
        address(node)
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(part).unwrap();
    socket.flush().unwrap();
    socket
}

fn staged_bytes(node: &TestNode, id: u64) -> u64 {
    node.stream_status(id, None).json["staged_bytes"]
        .as_u64()
        .unwrap_or(0)
}

fn resumed_line(kept: u64, total: usize) -> String {
    format!(
        "resumed: {} of {} already on the node",
        human_size(kept),
        human_size(total as u64)
    )
}

/// Runs the same network upload again and checks that it resumed from the `kept`
/// bytes and stored the whole file.
fn assert_rerun_resumes(node: &TestNode, file: &Path, name: &str, kept: u64, bytes: &[u8]) {
    let output = cli_ok(
        node,
        &["upload", "--provider", "network", path_arg(file), name],
    );
    assert!(
        output.contains(&resumed_line(kept, bytes.len())),
        "{output}"
    );
    assert_verifies(node, name, bytes);
}

#[test]
fn a_connection_cut_mid_body_is_resumed_by_rerunning_the_cli() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let dir = tempfile::tempdir().unwrap();
    for (provider, name) in [("network", "cut/streamed.bin"), ("local", "cut/copied.bin")] {
        let bytes = payload(6 << 20, name.len());
        let file = dir.path().join(name.replace('/', "-"));
        fs::write(&file, &bytes).unwrap();
        let staged = stage_like_the_cli(&node, name, &bytes);
        let id = transfer_id(&staged);
        let half = bytes.len() / 2;
        // Half the body, then the connection closes.
        let socket = start_stream(&node, id, 0, bytes.len(), &bytes[..half]);
        socket.shutdown(Shutdown::Both).unwrap();
        drop(socket);
        wait_until("the node to keep the half it received", || {
            staged_bytes(&node, id) == half as u64
        });

        let output = cli_ok(
            &node,
            &["upload", "--provider", provider, path_arg(&file), name],
        );
        assert!(
            output.contains(&resumed_line(half as u64, bytes.len())),
            "{provider}: {output}"
        );
        assert!(output.contains(&format!("via {provider})")), "{output}");
        assert_verifies(&node, name, &bytes);
    }
}

/// A TCP proxy to a node that forwards at most `limit` bytes from its clients (all
/// connections together) and then stops reading from them, so an upload through
/// it stalls mid-body; when the node closes a connection, so does the proxy.
struct StallingProxy {
    url: String,
    /// Body bytes of the stream request that the stall cut, once it happened.
    body_at_stall: Arc<Mutex<Option<u64>>>,
}

impl StallingProxy {
    fn start(target: String, limit: u64) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body_at_stall = Arc::new(Mutex::new(None));
        let stall = body_at_stall.clone();
        let counted = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(node) = TcpStream::connect(&target) else {
                    continue; // the client sees its connection close
                };
                let from_node = node.try_clone().unwrap();
                let to_client = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let mut from_node = from_node;
                    let _ = std::io::copy(&mut from_node, &mut &to_client);
                    let _ = to_client.shutdown(Shutdown::Both);
                });
                let (counted, stall) = (counted.clone(), stall.clone());
                std::thread::spawn(move || forward_up_to(client, node, &counted, limit, &stall));
            }
        });
        StallingProxy { url, body_at_stall }
    }

    /// Body bytes of the stalled stream request, once it stalled.
    fn stalled_body(&self) -> Option<u64> {
        *self.body_at_stall.lock().unwrap()
    }
}

fn forward_up_to(
    mut client: TcpStream,
    mut node: TcpStream,
    counted: &AtomicU64,
    limit: u64,
    stall: &Mutex<Option<u64>>,
) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 16 << 10];
    loop {
        let room = limit.saturating_sub(counted.load(Ordering::SeqCst));
        if room == 0 {
            // Stalled: nothing more is read from this client. Count the body bytes
            // of the last request head it sent.
            let find = |haystack: &[u8], needle: &[u8]| {
                haystack.windows(needle.len()).rposition(|w| w == needle)
            };
            if let Some(put) = find(&seen, b"PUT /api/v2/upload/stream/")
                && let Some(head) = seen[put..].windows(4).position(|w| w == b"\r\n\r\n")
            {
                let body = seen.len() - (put + head + 4);
                *stall.lock().unwrap() = Some(body as u64);
            }
            return;
        }
        let wanted = buffer.len().min(room as usize);
        match client.read(&mut buffer[..wanted]) {
            Ok(0) | Err(_) => {
                let _ = node.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                counted.fetch_add(n as u64, Ordering::SeqCst);
                seen.extend_from_slice(&buffer[..n]);
                if node.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts `quire upload` against `url` as the node's admin, with its output piped.
fn spawn_upload(node: &TestNode, url: &str, args: &[&str]) -> Child {
    quire_command()
        .arg("upload")
        .args(args)
        .args(["--url", url, "--user", "admin"])
        .args(["--password", &node.admin_password])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (with a deadline) for the CLI to exit; returns its output.
fn finish(child: Child) -> Output {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    receiver
        .recv_timeout(DEADLINE)
        .expect("the CLI exits")
        .expect("the CLI's output")
}

/// The length of the file the node is staging under `upload_name`, if any.
fn staging_length(node: &TestNode, upload_name: &str) -> Option<u64> {
    let staging = node.store_root().join(".quire-staging");
    fs::read_dir(staging)
        .ok()?
        .flatten()
        .find_map(|dir| fs::metadata(dir.path().join(upload_name)).ok())
        .map(|metadata| metadata.len())
}

/// Starts an upload of `bytes` as `name` through a proxy that stalls after 1 MiB,
/// and waits until the node has staged every body byte that got through.
fn stalled_upload(node: &TestNode, file: &Path, name: &str, bytes: &[u8]) -> Child {
    let proxy = StallingProxy::start(address(node), 1 << 20);
    let child = spawn_upload(
        node,
        &proxy.url,
        &["--provider", "network", path_arg(file), name],
    );
    let upload_name = name.rsplit('/').next().unwrap();
    wait_until("the node to stage the bytes that got through", || {
        proxy
            .stalled_body()
            .is_some_and(|body| staging_length(node, upload_name) == Some(body))
    });
    assert!(staging_length(node, upload_name).unwrap() < bytes.len() as u64);
    child
}

#[test]
fn an_upload_whose_node_was_killed_mid_stream_resumes_when_run_again() {
    let mut node = TestNode::with_config(ALWAYS_REHASH);
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(6 << 20, 7);
    let file = dir.path().join("killed.bin");
    fs::write(&file, &bytes).unwrap();
    let child = stalled_upload(&node, &file, "k/killed.bin", &bytes);
    node.kill();
    let interrupted = finish(child);
    assert!(!interrupted.status.success());
    let said = stderr(&interrupted);
    assert!(
        said.contains("the node keeps the bytes it received: re-run the same command to resume"),
        "{said}"
    );

    node.start_again();
    let kept = staging_length(&node, "killed.bin").expect("the staged bytes survive");
    assert!(kept > 0);
    assert_rerun_resumes(&node, &file, "k/killed.bin", kept, &bytes);
}

#[test]
fn ctrl_c_says_that_running_the_command_again_resumes_and_it_does() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(6 << 20, 8);
    let file = dir.path().join("stopped.bin");
    fs::write(&file, &bytes).unwrap();
    let child = stalled_upload(&node, &file, "c/stopped.bin", &bytes);
    signal(&child, rustix::process::Signal::INT);
    let interrupted = finish(child);
    assert!(!interrupted.status.success());
    let said = stderr(&interrupted);
    assert!(
        said.contains("interrupted after") && said.contains("re-run the same command to resume"),
        "{said}"
    );

    // The stalled stream is still open on the node; the new one takes over.
    let kept = staging_length(&node, "stopped.bin").unwrap();
    assert_rerun_resumes(&node, &file, "c/stopped.bin", kept, &bytes);
}

#[test]
fn kept_bytes_that_do_not_match_are_sent_again_from_the_start() {
    let node = TestNode::with_config(ALWAYS_REHASH);
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(1 << 20, 9);
    let file = dir.path().join("damaged.bin");
    fs::write(&file, &bytes).unwrap();
    let staged = stage_like_the_cli(&node, "w/damaged.bin", &bytes);
    // What a power loss may leave: the right length, the wrong bytes.
    let damaged = vec![0u8; bytes.len() / 2];
    let put = node.put_stream(transfer_id(&staged), 0, None, &damaged);
    assert_eq!(put.status, 200, "{}", put.text);

    let output = node.cli(&[
        "upload",
        "--provider",
        "network",
        path_arg(&file),
        "w/damaged.bin",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the bytes kept from an earlier attempt did not match"),
        "{}",
        stderr(&output)
    );
    assert!(!stdout(&output).contains("resumed:"), "{}", stdout(&output));
    assert_verifies(&node, "w/damaged.bin", &bytes);
}
