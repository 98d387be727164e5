//! Drop-box ingest against real nodes: bursts ingested exactly once, slow writers
//! waited for, files dropped while the node was down, move-aside, names already
//! taken, nested and moved-in directories, a SIGKILL in the middle of a burst, and
//! start-up refusing bad `[[dropbox]]` tables.
//!
//! Waiting: the tests wait for conditions the node makes true (a file recorded, a
//! drop-box emptied, a retry logged), with deadlines. Real time passes only where
//! it is the subject: a slow writer must outlast the settle time.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::assert_refused_naming;
use crate::node::TestNode;
use crate::support::md5;

/// How long the node may take to ingest what a test dropped (debug build).
pub(crate) const DEADLINE: Duration = Duration::from_secs(120);

/// A node with one drop-box at `<data>/dropbox`, prefix `p`, JSON logs, and
/// `extra` lines added to the drop-box table.
pub(crate) fn dropbox_node(extra: &str) -> TestNode {
    TestNode::with_config(&format!(
        "log_format = \"json\"\n[[dropbox]]\npath = \"dropbox\"\nprefix = \"p\"\n{extra}"
    ))
}

const DELETE: &str = "after_ingest = \"delete\"\nsettle_seconds = 1\n";

pub(crate) fn dropbox(node: &TestNode) -> PathBuf {
    node.data_dir.join("dropbox")
}

/// Waits (polling, with a deadline) until `done` holds.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Regular files under `dir`, relative to it.
pub(crate) fn files_under(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The record of `name`, if the node has one.
pub(crate) fn recorded(node: &TestNode, name: &str) -> Option<Value> {
    let (status, found) = node.search_name(name);
    match status {
        404 => None,
        200 => {
            assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
            Some(found[0].clone())
        }
        _ => panic!("search/file {name}: {status} {found}"),
    }
}

/// Every file the drop-box recorded (uploader `dropbox`), by name.
pub(crate) fn recorded_by_dropbox(node: &TestNode) -> Vec<Value> {
    let (status, found) = node.post_admin(
        "search/file",
        json!({"uploader": "dropbox", "max_results": 100_000}),
    );
    match status {
        404 => Vec::new(),
        200 => found.as_array().unwrap().clone(),
        _ => panic!("search/file: {status} {found}"),
    }
}

/// Uncleared errors raised by drop-boxes.
pub(crate) fn dropbox_errors(node: &TestNode) -> Vec<Value> {
    let (status, found) = node.post_admin("search/error", json!({"max_results": 1000}));
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{found}");
    let all = found.as_array().unwrap().clone();
    all.into_iter()
        .filter(|e| e["caller"] == "dropbox")
        .collect()
}

/// The node's JSON log lines whose message is `message`.
pub(crate) fn logged(node: &TestNode, message: &str) -> Vec<Value> {
    let text = fs::read_to_string(node.dir.path().join("stderr.log")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == message)
        .collect()
}

/// Checks that the record of `name` describes `bytes`, and that its stored copy
/// holds them.
fn assert_recorded_as(node: &TestNode, record: &Value, bytes: &[u8]) {
    let name = record["name"].as_str().unwrap();
    assert_eq!(record["checksum"], md5(bytes), "{name}");
    assert_eq!(record["size"], bytes.len(), "{name}");
    assert_eq!(record["uploader"], "dropbox", "{name}");
    let path = record["instances"][0]["path"].as_str().unwrap();
    assert_eq!(path, node.store_root().join(name).to_str().unwrap());
    assert_eq!(fs::read(path).unwrap(), bytes, "{name}");
}

fn content(index: usize) -> Vec<u8> {
    format!("file {index}\n").repeat(1 + index % 7).into_bytes()
}

#[test]
fn a_burst_of_files_is_ingested_exactly_once() {
    let node = dropbox_node(DELETE);
    let root = dropbox(&node);
    let count = 2000;
    let mut expected = BTreeSet::new();
    for index in 0..count {
        let relative = format!("run-{}/f{index:05}.dat", index % 4);
        let path = root.join(&relative);
        if index < 4 {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        fs::write(&path, content(index)).unwrap();
        expected.insert(format!("p/{relative}"));
    }
    wait_until("the drop-box is empty", || files_under(&root).is_empty());
    let records = recorded_by_dropbox(&node);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), count, "one record per file");
    assert_eq!(
        names
            .iter()
            .copied()
            .map(String::from)
            .collect::<BTreeSet<_>>(),
        expected
    );
    for record in &records {
        let name = record["name"].as_str().unwrap();
        let index: usize = name[name.len() - 9..name.len() - 4].parse().unwrap();
        assert_recorded_as(&node, record, &content(index));
    }
    assert_eq!(files_under(&node.store_root().join("p")).len(), count);
    assert!(dropbox_errors(&node).is_empty());
    // A sample by name: each name is found once.
    for name in expected.iter().step_by(97) {
        assert!(recorded(&node, name).is_some(), "{name}");
    }
}

#[test]
fn a_slow_writer_is_not_ingested_before_it_is_complete() {
    let node = dropbox_node(DELETE);
    let path = dropbox(&node).join("slow.dat");
    let mut file = fs::File::create(&path).unwrap();
    let mut written = Vec::new();
    // Growing for well past the settle time (1 s), then idle but still open for
    // twice the settle time.
    for part in 0..6 {
        let chunk = format!("part {part}\n").repeat(100).into_bytes();
        file.write_all(&chunk).unwrap();
        written.extend_from_slice(&chunk);
        std::thread::sleep(Duration::from_millis(400));
    }
    std::thread::sleep(Duration::from_millis(2000));
    assert!(
        recorded(&node, "p/slow.dat").is_none(),
        "ingested while open"
    );
    assert!(path.exists());
    file.write_all(b"the end\n").unwrap();
    written.extend_from_slice(b"the end\n");
    drop(file);
    wait_until("slow.dat is recorded", || {
        recorded(&node, "p/slow.dat").is_some()
    });
    let record = recorded(&node, "p/slow.dat").unwrap();
    assert_recorded_as(&node, &record, &written);
    wait_until("slow.dat leaves the drop-box", || !path.exists());
}

#[test]
fn files_dropped_while_the_node_is_stopped_are_ingested_after_it_starts() {
    let mut node = dropbox_node(DELETE);
    node.stop();
    let root = dropbox(&node);
    fs::create_dir_all(root.join("night/deep")).unwrap();
    fs::write(root.join("night/a.dat"), b"dropped at night").unwrap();
    fs::write(root.join("night/deep/b.dat"), b"also at night").unwrap();
    fs::write(root.join("c.dat"), b"and this").unwrap();
    node.start_again();
    wait_until("the drop-box is empty", || files_under(&root).is_empty());
    for (name, bytes) in [
        ("p/night/a.dat", &b"dropped at night"[..]),
        ("p/night/deep/b.dat", b"also at night"),
        ("p/c.dat", b"and this"),
    ] {
        let record = recorded(&node, name).unwrap_or_else(|| panic!("{name} not recorded"));
        assert_recorded_as(&node, &record, bytes);
    }
}

#[test]
fn move_mode_moves_ingested_files_aside_and_never_ingests_them_again() {
    // Copied rather than linked: the moved-aside files stay independent.
    let mut node = dropbox_node(
        "after_ingest = \"move\"\nmove_to = \"dropbox/done\"\nsettle_seconds = 1\nlink = false\n",
    );
    let root = dropbox(&node);
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("x.dat"), b"x").unwrap();
    fs::write(root.join("sub/y.dat"), b"yy").unwrap();
    wait_until("both are moved aside", || {
        files_under(&root) == BTreeSet::from(["done/x.dat".into(), "done/sub/y.dat".into()])
    });
    assert_recorded_as(&node, &recorded(&node, "p/x.dat").unwrap(), b"x");
    assert_recorded_as(&node, &recorded(&node, "p/sub/y.dat").unwrap(), b"yy");
    assert_eq!(fs::read(root.join("done/sub/y.dat")).unwrap(), b"yy");
    let inode = |path: PathBuf| std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap());
    assert_ne!(
        inode(root.join("done/x.dat")),
        inode(node.store_root().join("p/x.dat")),
        "link = false keeps a copy of its own"
    );
    // A restart rescans everything; a marker dropped meanwhile settles along with
    // anything else that scan found, so once it is in, done/ was passed over.
    node.stop();
    fs::write(root.join("marker.dat"), b"m").unwrap();
    node.start_again();
    wait_until("the marker is moved aside", || {
        root.join("done/marker.dat").exists()
    });
    assert!(recorded(&node, "p/marker.dat").is_some());
    assert!(recorded(&node, "p/done/x.dat").is_none());
    assert!(recorded(&node, "p/done/sub/y.dat").is_none());
    assert_eq!(recorded_by_dropbox(&node).len(), 3);
}

#[test]
fn a_taken_name_keeps_the_file_and_reports_one_error() {
    let node =
        dropbox_node("after_ingest = \"delete\"\nsettle_seconds = 1\nrescan_seconds = 0.2\n");
    let root = dropbox(&node);
    node.upload("p/taken.dat", b"first comer");
    node.upload("p/same.dat", b"same bytes");
    fs::write(root.join("same.dat"), b"same bytes").unwrap();
    fs::write(root.join("taken.dat"), b"latecomer").unwrap();
    // The same bytes under a recorded name were ingested already: only removed.
    wait_until("same.dat leaves the drop-box", || {
        !root.join("same.dat").exists()
    });
    let refusals = || {
        logged(&node, "drop-box files done")
            .iter()
            .filter(|line| line["fields"]["refused"] == 1)
            .count()
    };
    wait_until("taken.dat was tried three times", || refusals() >= 3);
    let errors = dropbox_errors(&node);
    assert_eq!(errors.len(), 1, "one error, not one per retry: {errors:?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains(root.join("taken.dat").to_str().unwrap()),
        "{message}"
    );
    assert!(message.contains("p/taken.dat"), "{message}");
    assert_eq!(errors[0]["category"], "transfer");
    assert_eq!(fs::read(root.join("taken.dat")).unwrap(), b"latecomer");
    assert_eq!(
        recorded(&node, "p/taken.dat").unwrap()["checksum"],
        md5(b"first comer")
    );
    assert_eq!(recorded_by_dropbox(&node).len(), 0);

    // Cleared by an operator while the problem lasts: reported again.
    let (status, body) = node.post_admin("error/clear", json!({"id": errors[0]["id"]}));
    assert_eq!(status, 200, "{body}");
    wait_until("the problem is reported again", || {
        dropbox_errors(&node).len() == 1
    });
    assert_ne!(dropbox_errors(&node)[0]["id"], errors[0]["id"]);

    // A changed file is tried again at once: now it holds the recorded bytes.
    fs::write(root.join("taken.dat"), b"first comer").unwrap();
    wait_until("taken.dat leaves the drop-box", || {
        !root.join("taken.dat").exists()
    });
    assert_eq!(
        recorded(&node, "p/taken.dat").unwrap()["uploader"],
        "test-uploader"
    );
}

#[test]
fn with_no_store_enabled_files_wait_and_are_reported_once() {
    let node =
        dropbox_node("after_ingest = \"delete\"\nsettle_seconds = 1\nrescan_seconds = 0.2\n");
    let root = dropbox(&node);
    let body = json!({"store_name": "main", "enabled": false});
    assert_eq!(node.post_admin("admin/stores/state_change", body).0, 200);
    for name in ["a.dat", "b.dat"] {
        fs::write(root.join(name), name).unwrap();
    }
    wait_until("the files were refused twice", || {
        let refusals = logged(&node, "drop-box files done")
            .iter()
            .map(|line| line["fields"]["refused"].as_u64().unwrap_or(0))
            .sum::<u64>();
        refusals >= 4
    });
    let errors = dropbox_errors(&node);
    assert_eq!(errors.len(), 1, "one problem for the drop-box: {errors:?}");
    assert_eq!(errors[0]["category"], "configuration");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("no store"),
        "{errors:?}"
    );
    assert_eq!(files_under(&root).len(), 2, "nothing is deleted");
    let body = json!({"store_name": "main", "enabled": true});
    assert_eq!(node.post_admin("admin/stores/state_change", body).0, 200);
    wait_until("both are ingested at a later rescan", || {
        files_under(&root).is_empty()
    });
    assert_recorded_as(&node, &recorded(&node, "p/a.dat").unwrap(), b"a.dat");
    assert_recorded_as(&node, &recorded(&node, "p/b.dat").unwrap(), b"b.dat");
}

#[test]
fn nested_and_moved_in_directories_give_prefixed_relative_names() {
    let node = dropbox_node(DELETE);
    let root = dropbox(&node);
    fs::create_dir_all(root.join("sub/dir")).unwrap();
    fs::write(root.join("sub/dir/name"), b"nested").unwrap();
    let outside = node.dir.path().join("prepared");
    fs::create_dir_all(outside.join("a/b")).unwrap();
    fs::write(outside.join("a/b/c.dat"), b"moved in").unwrap();
    fs::write(outside.join("top.dat"), b"moved too").unwrap();
    fs::write(outside.join("a/partial.part"), b"ignored").unwrap();
    fs::rename(&outside, root.join("tree")).unwrap();
    wait_until("the drop-box holds only the ignored file", || {
        files_under(&root) == BTreeSet::from(["tree/a/partial.part".into()])
    });
    assert_recorded_as(
        &node,
        &recorded(&node, "p/sub/dir/name").unwrap(),
        b"nested",
    );
    assert_recorded_as(
        &node,
        &recorded(&node, "p/tree/a/b/c.dat").unwrap(),
        b"moved in",
    );
    assert_recorded_as(
        &node,
        &recorded(&node, "p/tree/top.dat").unwrap(),
        b"moved too",
    );
    assert!(recorded(&node, "p/tree/a/partial.part").is_none());
}

/// Files in a burst dropped at once.
const BURST: usize = 1200;
/// The moments of the kills: once the drop-box holds at most this share of the
/// burst. (Ingest takes the ready files in large batches, so the count falls in
/// steps; a moment the count skips past is taken at the next poll.)
const KILL_AT: [f64; 3] = [0.9, 0.6, 0.3];
/// Most attempts at a kill, until recovery has taken back an interrupted batch.
const MAX_KILLS: usize = 12;

/// Drops a burst of `BURST` files named by `burst`; returns names and contents.
fn drop_burst(root: &Path, burst: usize) -> Vec<(String, Vec<u8>)> {
    (0..BURST)
        .map(|index| {
            let relative = format!("b{burst}/k{}/f{index:05}.dat", index % 3);
            let path = root.join(&relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let bytes = content(burst * BURST + index);
            fs::write(&path, &bytes).unwrap();
            (format!("p/{relative}"), bytes)
        })
        .collect()
}

/// Files left in the drop-box, and one of them that is also linked into the
/// store (its batch is placed, the file not yet removed), if any.
fn pending(root: &Path) -> (usize, Option<PathBuf>) {
    let mut count = 0;
    let mut linked = None;
    for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
        if entry.file_type().is_file() {
            count += 1;
            let placed = entry.metadata().is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.nlink() > 1
            });
            if placed && linked.is_none() {
                linked = Some(entry.into_path());
            }
        }
    }
    (count, linked)
}

/// Placements the drop-box recovery of one start took back or returned, from the
/// node's log of that start (its report, as fields or as debug text).
fn dropbox_recovered(log: &str) -> u64 {
    use crate::crash::logged_count;
    log.lines()
        .filter(|line| line.contains("taken_back") && line.contains("returned"))
        .map(|line| {
            logged_count(line, "taken_back").unwrap_or(0)
                + logged_count(line, "returned").unwrap_or(0)
        })
        .sum()
}

#[test]
fn kills_during_a_burst_lose_nothing_record_nothing_twice_and_leave_nothing_behind() {
    // Every record fits in one search.
    let mut node = TestNode::with_config(&format!(
        "log_format = \"json\"\nmax_search_results = 1000000\n\
         [[dropbox]]\npath = \"dropbox\"\nprefix = \"p\"\n{DELETE}"
    ));
    let root = dropbox(&node);
    let mut dropped = drop_burst(&root, 0);
    let mut bursts = 1;
    let mut taken_back = 0;
    let mut kills = 0;
    let mut attempts = 0;
    while kills < KILL_AT.len() || taken_back == 0 {
        assert!(
            kills < MAX_KILLS,
            "after {MAX_KILLS} kills, start-up recovery never took back a placed batch"
        );
        let at = KILL_AT[kills % KILL_AT.len()];
        if pending(&root).0 as f64 <= at * BURST as f64 {
            dropped.extend(drop_burst(&root, bursts));
            bursts += 1;
        }
        let threshold = (at * BURST as f64) as usize;
        let started = Instant::now();
        let before = pending(&root).0;
        let in_time = loop {
            let (count, linked) = pending(&root);
            if count == 0 {
                break false;
            }
            // The node is ingesting: files left since this attempt began.
            if count == before {
                continue;
            }
            // Best: a batch placed in the store and not yet recorded.
            let unrecorded = linked.filter(|path| {
                let relative = path.strip_prefix(&root).unwrap().to_string_lossy();
                recorded(&node, &format!("p/{relative}")).is_none()
            });
            let patience_over = started.elapsed() > DEADLINE / 4 || count < threshold * 3 / 4;
            if count <= threshold && (unrecorded.is_some() || patience_over) {
                eprintln!("kill {kills}: {count} pending, unrecorded placement: {unrecorded:?}");
                break true;
            }
            assert!(started.elapsed() < DEADLINE, "kill {kills}: ingest stalled");
        };
        if in_time {
            node.kill();
        }
        let (left, _) = pending(&root);
        if left == 0 {
            // The burst was finished before the kill landed: not a kill during
            // ingest. Try this moment again.
            attempts += 1;
            assert!(
                attempts < 2 * MAX_KILLS,
                "no kill landed while files were pending"
            );
            if !in_time {
                continue;
            }
        }
        let logged_before = node.log().len();
        node.start_again();
        if left == 0 {
            continue;
        }
        let recovered = dropbox_recovered(node.log().get(logged_before..).unwrap_or_default());
        eprintln!("kill {kills} with {left} files pending: recovery took back {recovered}");
        taken_back += recovered;
        kills += 1;
    }
    wait_until("the drop-box is empty", || files_under(&root).is_empty());
    let records = recorded_by_dropbox(&node);
    let names: BTreeSet<&str> = records
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let missing: Vec<&str> = dropped
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !names.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "{} dropped files are not recorded: {:?}; drop-box errors: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)],
        dropbox_errors(&node)
    );
    assert_eq!(records.len(), dropped.len(), "every file is recorded once");
    let contents: std::collections::HashMap<&str, &[u8]> = dropped
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    for record in &records {
        let name = record["name"].as_str().unwrap();
        let bytes = contents
            .get(name)
            .unwrap_or_else(|| panic!("{name} was never dropped"));
        assert_recorded_as(&node, record, bytes);
    }
    // No bytes without a record anywhere in the store, nothing left in staging.
    let staging = node.store_root().join(".quire-staging");
    let stored: Vec<PathBuf> = walkdir::WalkDir::new(node.store_root())
        .into_iter()
        .filter_entry(|e| e.path() != staging)
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    assert_eq!(
        stored.len(),
        records.len(),
        "the store holds exactly the recorded files"
    );
    let staged: Vec<PathBuf> = fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(staged.is_empty(), "staging is left behind: {staged:?}");
    assert!(
        dropbox_errors(&node).is_empty(),
        "{:?}",
        dropbox_errors(&node)
    );
}

#[test]
fn a_drop_box_without_path_is_refused() {
    assert_refused_naming(
        "[[dropbox]]\nprefix = \"p\"\nafter_ingest = \"delete\"\n",
        "path",
    );
}

#[test]
fn move_without_move_to_is_refused() {
    assert_refused_naming(
        "[[dropbox]]\npath = \"in\"\nprefix = \"p\"\nafter_ingest = \"move\"\n",
        "dropbox[0].move_to",
    );
}

#[test]
fn a_drop_box_inside_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quire.toml");
    fs::write(
        &config,
        "[[dropbox]]\npath = \"store/in\"\nprefix = \"p\"\nafter_ingest = \"delete\"\n",
    )
    .unwrap();
    let output = crate::node::quire_command()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dropbox[0].path"), "{stderr}");
    assert!(stderr.contains("store 'main'"), "{stderr}");
}
