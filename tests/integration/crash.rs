//! Crash safety: SIGKILL of the node in the middle of a stream of concurrent uploads,
//! round after round on the same data directory.
//!
//! After every restart: each upload whose commit was answered 200 is searchable with
//! its size and checksum and its bytes verify; every recorded file has its bytes;
//! nothing is left in staging (the node runs with `staging_expiry = 0`, so start-up
//! recovery must fail every unfinished transfer and remove all staging); and nothing
//! is in the store that no record points at. Uploads work again after each restart.
//!
//! The kill is triggered by what the clients see, not by a clock: after a count of
//! acknowledged commits, a round aims at the window between a name appearing in the
//! store and its record (a single commit's rename, or a batch_put's link, whose
//! request is still unanswered), and kills the node the moment it sees one. Rounds
//! go on until start-up recovery has really restored an interrupted single commit
//! and taken back an interrupted batch_put (its report says so, and the caught
//! names are neither recorded nor in the store), within a bound on rounds.
//! (SIGKILL keeps the page cache: what a power loss would lose is tested by the
//! `power_loss` unit tests.)

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{commit_body, md5, stage_body, staging_location};

/// Recovery fails every unfinished transfer, so staging must end up empty; every
/// file must fit in one search.
const CONFIG: &str = "staging_expiry = 0\nmax_search_results = 1000000\n";
/// Rounds always run, and the most that may run until both kinds of interrupted
/// upload were recovered.
const MIN_ROUNDS: usize = 3;
const MAX_ROUNDS: usize = 14;
/// How long a round looks for its window before it kills the node anyway.
const AIM_PATIENCE: Duration = Duration::from_secs(40);
/// Clients that loop stage -> copy -> commit, one upload at a time.
const SINGLE_CLIENTS: usize = 6;
/// Clients that loop batch_stage -> copy all -> batch_commit.
const BATCH_CLIENTS: usize = 2;
const BATCH_ITEMS: usize = 24;
/// How long a round may take to reach its kill condition.
const ROUND_DEADLINE: Duration = Duration::from_secs(120);
const UPLOADER: &str = "crash-test";

/// One upload a client attempted: the name, and the bytes it would have.
#[derive(Debug, Clone)]
struct Upload {
    name: String,
    size: u64,
    md5: String,
}

/// Counters shared by the clients of one round and the thread that kills the node.
#[derive(Default)]
struct Round {
    /// Set just before SIGKILL is sent: a request that fails while this is false
    /// failed for some other reason.
    killed: AtomicBool,
    /// Single commits answered 200 this round.
    single_commits: AtomicUsize,
    /// Batch commits answered 200 this round.
    batch_commits: AtomicUsize,
    /// Commit requests (single or batch) sent and not yet answered.
    commits_in_flight: AtomicUsize,
    /// Clients still looping.
    running: AtomicUsize,
    /// Names of single commits sent and not yet answered.
    single_in_flight: Mutex<HashSet<String>>,
    /// Names of batch_put files sent and not yet answered.
    put_in_flight: Mutex<HashSet<String>>,
}

/// The window a round kills the node in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// A single commit renamed into the store and not yet answered.
    SingleCommit,
    /// A batch_put file named in the store and not yet answered.
    BatchPut,
}

impl Round {
    /// Names of `aim`'s unanswered requests that are in the store now.
    fn caught(&self, aim: Aim, store_root: &Path) -> Vec<String> {
        let in_flight = match aim {
            Aim::SingleCommit => &self.single_in_flight,
            Aim::BatchPut => &self.put_in_flight,
        };
        let names: Vec<String> = in_flight
            .lock()
            .expect("in-flight names")
            .iter()
            .cloned()
            .collect();
        names
            .into_iter()
            .filter(|name| fs::symlink_metadata(store_root.join(name)).is_ok())
            .collect()
    }
}

/// What one client saw.
#[derive(Default)]
struct Report {
    attempted: Vec<Upload>,
    /// Uploads whose commit was answered 200 (batch: item without error).
    acknowledged: Vec<Upload>,
    /// Requests sent before the kill that the kill cut off.
    cut: Vec<String>,
    /// Anything that should not happen while the node is up.
    unexpected: Vec<String>,
}

/// A client of its own (connection pool, credentials) that never panics.
struct Client<'a> {
    http: reqwest::blocking::Client,
    base: String,
    password: String,
    round: &'a Round,
    report: Report,
}

impl<'a> Client<'a> {
    fn new(node: &TestNode, round: &'a Round) -> Client<'a> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("building an HTTP client");
        Client {
            http,
            base: node.base.clone(),
            password: node.admin_password.clone(),
            round,
            report: Report::default(),
        }
    }

    /// POSTs `body`; `None` when the request did not get a complete answer (which
    /// is recorded as cut by the kill, or as unexpected before it).
    fn post(&mut self, route: &str, body: &Value, what: &str) -> Option<(u16, Value)> {
        let url = format!("{}{}/{route}", self.base, crate::node::API);
        let request = self.http.post(url).json(body);
        self.send(request, route.ends_with("commit"), what)
    }

    /// PUTs a manifest and its files' bytes to `upload/batch_put`.
    fn put_batch_body(&mut self, body: Vec<u8>, what: &str) -> Option<(u16, Value)> {
        let url = format!("{}{}/upload/batch_put", self.base, crate::node::API);
        let request = self.http.put(url).body(body);
        self.send(request, true, what)
    }

    fn send(
        &mut self,
        request: reqwest::blocking::RequestBuilder,
        commit: bool,
        what: &str,
    ) -> Option<(u16, Value)> {
        let sent_before_kill = !self.round.killed.load(Ordering::SeqCst);
        if commit {
            self.round.commits_in_flight.fetch_add(1, Ordering::SeqCst);
        }
        let answer = request
            .basic_auth("admin", Some(&self.password))
            .send()
            .and_then(|response| {
                let status = response.status().as_u16();
                Ok((status, response.text()?))
            });
        if commit {
            self.round.commits_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        match answer {
            Ok((status, text)) => {
                Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
            }
            Err(error) => {
                if !self.round.killed.load(Ordering::SeqCst) {
                    self.unexpected(format!("{what}: {error} while the node was up"));
                } else if sent_before_kill {
                    self.report.cut.push(what.to_string());
                }
                None
            }
        }
    }

    fn unexpected(&mut self, what: String) {
        self.report.unexpected.push(what);
    }

    /// stage -> copy -> commit, until the node goes away.
    fn single_uploads(mut self, round: usize, client: usize) -> Report {
        for index in 0.. {
            let name = if index % 2 == 0 {
                format!("r{round}/single{client}/f{index}")
            } else {
                format!("r{round}-single{client}-f{index}")
            };
            // Mostly small files, every fifth a few MiB: kills land in copies,
            // hashing and syncs as well as in the metadata path.
            let size = if index % 5 == 3 {
                (1 << 20) + pick(&name, 3 << 20)
            } else {
                1 + pick(&name, 16 << 10)
            };
            let bytes = content(&name, size);
            let upload = self.attempt(&name, &bytes);
            let body = stage_body(&name, bytes.len() as i64, &upload.md5, UPLOADER);
            let Some((status, staged)) = self.post("upload/stage", &body, &format!("stage {name}"))
            else {
                break;
            };
            if status != 201 {
                self.unexpected(format!("stage {name}: {status} {staged}"));
                break;
            }
            if let Err(error) = fs::write(staging_location(&staged), &bytes) {
                self.unexpected(format!("copying {name} to staging: {error}"));
                break;
            }
            let body = commit_body(&staged, "local", "0", UPLOADER);
            let in_flight = &self.round.single_in_flight;
            in_flight
                .lock()
                .expect("in-flight names")
                .insert(name.clone());
            let answer = self.post("upload/commit", &body, &format!("commit {name}"));
            in_flight.lock().expect("in-flight names").remove(&name);
            let Some((status, reply)) = answer else {
                break;
            };
            if status != 200 {
                self.unexpected(format!("commit {name}: {status} {reply}"));
                break;
            }
            self.report.acknowledged.push(upload);
            self.round.single_commits.fetch_add(1, Ordering::SeqCst);
        }
        self.round.running.fetch_sub(1, Ordering::SeqCst);
        self.report
    }

    /// batch_stage -> copy every item -> batch_commit (even clients), or every
    /// item named and sent in one batch_put (odd clients), until the node goes
    /// away.
    fn batch_uploads(mut self, round: usize, client: usize) -> Report {
        let in_body = client % 2 == 1;
        for batch in 0.. {
            let mut uploads = Vec::new();
            let mut contents = Vec::new();
            for item in 0..BATCH_ITEMS {
                let name = format!("r{round}/batch{client}/b{batch}/i{item}");
                let size = if item == 0 && batch % 2 == 1 {
                    (1 << 20) + pick(&name, 1 << 20)
                } else {
                    1 + pick(&name, 8 << 10)
                };
                let bytes = content(&name, size);
                let upload = self.attempt(&name, &bytes);
                contents.push((upload, bytes));
                uploads.push(stage_body(
                    &name,
                    size as i64,
                    &contents[item].0.md5,
                    UPLOADER,
                ));
            }
            if in_body {
                if !self.batch_put(
                    &format!("batch_put r{round}/batch{client}/b{batch}"),
                    &contents,
                ) {
                    break;
                }
                continue;
            }
            let what = format!("batch_stage r{round}/batch{client}/b{batch}");
            let body = json!({ "uploads": uploads });
            let Some((status, staged)) = self.post("upload/batch_stage", &body, &what) else {
                break;
            };
            if status != 201 {
                self.unexpected(format!("{what}: {status} {staged}"));
                break;
            }
            let mut commits = Vec::new();
            for (item, (upload, bytes)) in staged["uploads"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(&contents)
            {
                if !item["error"].is_null() || item["destination_location"] != upload.name {
                    self.unexpected(format!("{what}: item {item}"));
                    continue;
                }
                // Shaped like a single stage answer, for `commit_body`.
                let as_staged = json!({
                    "store_name": staged["store_name"],
                    "staging_name": item["staging_name"],
                    "staging_location": item["staging_location"],
                    "upload_name": item["upload_name"],
                    "destination_location": item["destination_location"],
                    "transfer_providers": staged["transfer_providers"],
                    "transfer_id": item["transfer_id"],
                });
                if let Err(error) = fs::write(staging_location(&as_staged), bytes) {
                    self.unexpected(format!("copying {} to staging: {error}", upload.name));
                    continue;
                }
                commits.push(commit_body(&as_staged, "local", "0", UPLOADER));
            }
            if commits.len() != BATCH_ITEMS {
                self.unexpected(format!("{what}: {} items staged", commits.len()));
                break;
            }
            let what = format!("batch_commit r{round}/batch{client}/b{batch}");
            let answer = self.post("upload/batch_commit", &json!({ "commits": commits }), &what);
            let Some((status, reply)) = answer else {
                break;
            };
            let answers = reply["commits"].as_array().cloned().unwrap_or_default();
            if status != 200 || answers.len() != BATCH_ITEMS {
                self.unexpected(format!("{what}: {status} {reply}"));
                break;
            }
            for (answer, (upload, _)) in answers.iter().zip(&contents) {
                if answer["error"].is_null() && answer["destination_location"] == upload.name {
                    self.report.acknowledged.push(upload.clone());
                } else {
                    self.unexpected(format!("{what}: item {answer}"));
                }
            }
            self.round.batch_commits.fetch_add(1, Ordering::SeqCst);
        }
        self.round.running.fetch_sub(1, Ordering::SeqCst);
        self.report
    }

    /// Sends one batch through `upload/batch_put`; `false` once the node is gone
    /// or answered something unexpected.
    fn batch_put(&mut self, what: &str, contents: &[(Upload, Vec<u8>)]) -> bool {
        let manifest = json!({
            "uploader": UPLOADER,
            "files": contents
                .iter()
                .map(|(upload, _)| json!({
                    "name": upload.name,
                    "size": upload.size,
                    "checksum": upload.md5,
                }))
                .collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let mut body = (manifest.len() as u64).to_le_bytes().to_vec();
        body.extend_from_slice(&manifest);
        for (_, bytes) in contents {
            body.extend_from_slice(bytes);
        }
        let in_flight = &self.round.put_in_flight;
        let names = contents.iter().map(|(upload, _)| upload.name.clone());
        in_flight.lock().expect("in-flight names").extend(names);
        let answer = self.put_batch_body(body, what);
        let mut names = in_flight.lock().expect("in-flight names");
        for (upload, _) in contents {
            names.remove(&upload.name);
        }
        drop(names);
        let Some((status, reply)) = answer else {
            return false;
        };
        let answers = reply["files"].as_array().cloned().unwrap_or_default();
        if status != 200 || answers.len() != contents.len() {
            self.unexpected(format!("{what}: {status} {reply}"));
            return false;
        }
        for (answer, (upload, _)) in answers.iter().zip(contents) {
            if answer["error"].is_null() && answer["name"] == upload.name {
                self.report.acknowledged.push(upload.clone());
            } else {
                self.unexpected(format!("{what}: item {answer}"));
            }
        }
        self.round.batch_commits.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn attempt(&mut self, name: &str, bytes: &[u8]) -> Upload {
        let upload = Upload {
            name: name.to_string(),
            size: bytes.len() as u64,
            md5: md5(bytes),
        };
        self.report.attempted.push(upload.clone());
        upload
    }
}

/// A number in `0..bound` derived from `name` (deterministic, spread out).
fn pick(name: &str, bound: usize) -> usize {
    (seed(name) % bound as u64) as usize
}

fn seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `size` bytes that no other name has.
fn content(name: &str, size: usize) -> Vec<u8> {
    let mut state = seed(name);
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

/// What a round's kill caught: names of `aim`'s unanswered requests that were in
/// the store at the kill (empty if the round killed without seeing one).
struct Caught {
    aim: Aim,
    names: Vec<String>,
}

/// Runs one round of concurrent uploads; once `singles` single commits and
/// `batches` batch commits have been acknowledged, kills the node the moment a
/// request of `aim` is caught in its window (or, after `AIM_PATIENCE`, while any
/// commit is under way); returns every client's report, after all of them have
/// stopped, and what the kill caught.
fn upload_until_killed(
    node: &mut TestNode,
    round_number: usize,
    (singles, batches): (usize, usize),
    aim: Aim,
) -> (Vec<Report>, Caught) {
    // Verify the admin's password once, before the clients start.
    let (status, body) = node.post_admin("ping/logged", json!({}));
    assert_eq!(status, 200, "{body}");
    let round = Round::default();
    round
        .running
        .store(SINGLE_CLIENTS + BATCH_CLIENTS, Ordering::SeqCst);
    let (reports, (reached, caught)) = std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for client in 0..SINGLE_CLIENTS {
            let worker = Client::new(node, &round);
            workers.push(scope.spawn(move || worker.single_uploads(round_number, client)));
        }
        for client in 0..BATCH_CLIENTS {
            let worker = Client::new(node, &round);
            workers.push(scope.spawn(move || worker.batch_uploads(round_number, client)));
        }
        let deadline = Instant::now() + ROUND_DEADLINE;
        let store_root = node.store_root();
        let mut aiming_since = None;
        let (reached, caught) = loop {
            let progressed = round.single_commits.load(Ordering::SeqCst) >= singles
                && round.batch_commits.load(Ordering::SeqCst) >= batches;
            if progressed {
                let since = *aiming_since.get_or_insert_with(Instant::now);
                let caught = round.caught(aim, &store_root);
                if !caught.is_empty() {
                    break (true, caught);
                }
                // Enough acknowledged, and a commit under way at this very moment.
                if since.elapsed() > AIM_PATIENCE
                    && round.commits_in_flight.load(Ordering::SeqCst) > 0
                {
                    break (true, Vec::new());
                }
            }
            if round.running.load(Ordering::SeqCst) == 0 || Instant::now() > deadline {
                break (false, Vec::new());
            }
            // Short: the window is a few milliseconds wide.
            std::thread::sleep(Duration::from_micros(200));
        };
        round.killed.store(true, Ordering::SeqCst);
        node.kill();
        let reports: Vec<Report> = workers
            .into_iter()
            .map(|worker| worker.join().expect("a client thread panicked"))
            .collect();
        (reports, (reached, caught))
    });
    let unexpected: Vec<&String> = reports.iter().flat_map(|r| &r.unexpected).collect();
    assert!(
        unexpected.is_empty(),
        "round {round_number}: unexpected answers: {unexpected:#?}"
    );
    assert!(
        reached,
        "round {round_number}: fewer than {singles} single and {batches} batch commits \
         within {ROUND_DEADLINE:?}"
    );
    let cut: Vec<&String> = reports.iter().flat_map(|r| &r.cut).collect();
    assert!(
        !cut.is_empty(),
        "round {round_number}: the kill interrupted no request"
    );
    eprintln!(
        "round {round_number}: {} uploads acknowledged, {} attempted; aiming at {aim:?}, \
         caught {caught:?}; cut by the kill: {cut:?}",
        reports.iter().map(|r| r.acknowledged.len()).sum::<usize>(),
        reports.iter().map(|r| r.attempted.len()).sum::<usize>(),
    );
    (reports, Caught { aim, names: caught })
}

/// Every file record, by name.
fn all_files(node: &TestNode) -> HashMap<String, Value> {
    let (status, found) = node.post_admin("search/file", json!({"max_results": 1_000_000}));
    if status == 404 {
        return HashMap::new();
    }
    assert_eq!(status, 200, "{found}");
    found
        .as_array()
        .expect("a list of files")
        .iter()
        .map(|file| {
            (
                file["name"].as_str().expect("a name").to_string(),
                file.clone(),
            )
        })
        .collect()
}

/// Every regular file under `dir`, skipping the top-level staging directory.
fn files_under(dir: &Path, staging: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("listing the store") {
        let entry = entry.expect("a directory entry");
        let path = entry.path();
        let kind = entry.file_type().expect("a file type");
        if path == staging {
            continue;
        } else if kind.is_dir() {
            files_under(&path, staging, found);
        } else if kind.is_file() {
            found.push(path);
        } else {
            panic!("{} is neither a file nor a directory", path.display());
        }
    }
}

/// The state a restarted node must be in, whatever moment the kill landed.
fn assert_consistent(node: &TestNode, attempted: &HashMap<String, Upload>, acked: &[Upload]) {
    let files = all_files(node);
    // (1) Every acknowledged upload is recorded as it was sent.
    for upload in acked {
        let file = files.get(&upload.name).unwrap_or_else(|| {
            panic!(
                "{} was acknowledged but is not found by search/file",
                upload.name
            )
        });
        assert_eq!(file["size"], upload.size, "{file}");
        assert_eq!(file["checksum"], upload.md5.as_str(), "{file}");
    }
    // (2) Every record is of an upload a client sent, and its bytes are there.
    let mut instance_paths = HashSet::new();
    for (name, file) in &files {
        let upload = attempted
            .get(name)
            .unwrap_or_else(|| panic!("a record for {name}, which no client uploaded: {file}"));
        assert_eq!(file["size"], upload.size, "{file}");
        assert_eq!(file["checksum"], upload.md5.as_str(), "{file}");
        let instances = file["instances"].as_array().expect("instances");
        assert_eq!(instances.len(), 1, "{file}");
        for instance in instances {
            assert_eq!(instance["available"], true, "{file}");
            let path = PathBuf::from(instance["path"].as_str().expect("a path"));
            assert!(path.starts_with(node.store_root()), "{file}");
            let bytes = fs::read(&path)
                .unwrap_or_else(|e| panic!("{name} is recorded but {path:?} is unreadable: {e}"));
            assert_eq!(bytes.len() as u64, upload.size, "{path:?}");
            assert_eq!(md5(&bytes), upload.md5, "the bytes of {name} differ");
            instance_paths.insert(path);
        }
    }
    let (status, instances) =
        node.post_admin("search/instance_local", json!({"max_results": 1_000_000}));
    assert_eq!(status, 200, "{instances}");
    assert_eq!(
        instances.as_array().map(Vec::len),
        Some(instance_paths.len()),
        "every instance belongs to a file"
    );
    // (3) No staging is left: every transfer was unfinished, and is now failed.
    // (Empty directories of completed uploads may wait there to be reused.)
    let staging = node.store_root().join(".quire-staging");
    let left: Vec<PathBuf> = fs::read_dir(&staging)
        .expect("listing staging")
        .map(|entry| entry.expect("a staging entry").path())
        .filter(|path| fs::read_dir(path).map_or(true, |mut inside| inside.next().is_some()))
        .collect();
    assert!(left.is_empty(), "staging left after recovery: {left:?}");
    // (4) Nothing is in the store that no record points at.
    let mut stored = Vec::new();
    files_under(&node.store_root(), &staging, &mut stored);
    let unrecorded: Vec<&PathBuf> = stored
        .iter()
        .filter(|path| !instance_paths.contains(*path))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "bytes in the store that no record points at: {unrecorded:?}"
    );
    assert_eq!(stored.len(), instance_paths.len());
}

/// The number logged for `field` in the last line of `log` that has one. Reports
/// may be logged as fields (`field=3`, or `"field":3` in JSON) or as a debug
/// struct (`field: 3`); all are read.
pub fn logged_count(log: &str, field: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|line| count_in(&without_colours(line), field))
}

/// `line` without ANSI escape sequences (a coloured log puts them around names).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

fn count_in(line: &str, field: &str) -> Option<u64> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = line[from..].find(field) {
        let at = from + found;
        from = at + field.len();
        if line[..at].ends_with(is_word) {
            continue;
        }
        let value = line[from..].trim_start_matches(['"', '\\']).trim_start();
        let Some(value) = value.strip_prefix([':', '=']) else {
            continue;
        };
        let digits: String = value
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(count) = digits.parse() {
            return Some(count);
        }
    }
    None
}

/// What the node logged since `offset` (in bytes) of its log.
fn log_since(node: &TestNode, offset: usize) -> String {
    node.log().get(offset..).unwrap_or_default().to_string()
}

#[test]
fn logged_counts_are_read_from_fields_json_and_debug_text() {
    let text = "INFO report=RecoveryReport { restored_commits: 2, taken_back_uploads: 0 }";
    assert_eq!(logged_count(text, "restored_commits"), Some(2));
    assert_eq!(logged_count(text, "taken_back_uploads"), Some(0));
    let fields = "INFO start-up recovery done restored_commits=3 taken_back_uploads=5";
    assert_eq!(logged_count(fields, "taken_back_uploads"), Some(5));
    let json = r#"{"fields":{"message":"done","taken_back":7,"taken_back_uploads":1}}"#;
    assert_eq!(logged_count(json, "taken_back"), Some(7));
    assert_eq!(logged_count(json, "taken_back_uploads"), Some(1));
    assert_eq!(logged_count("nothing here", "taken_back"), None);
    let coloured = "\u{1b}[3mrestored_commits\u{1b}[0m\u{1b}[2m=\u{1b}[0m4";
    assert_eq!(logged_count(coloured, "restored_commits"), Some(4));
}

/// Whether a round's kill really interrupted what it aimed at, and recovery
/// really recovered it: the caught names are neither recorded nor in the store,
/// and the recovery report counts at least that many.
fn recovered(node: &TestNode, caught: &Caught, report: &str) -> bool {
    let field = match caught.aim {
        Aim::SingleCommit => "restored_commits",
        Aim::BatchPut => "taken_back_uploads",
    };
    let undone = caught
        .names
        .iter()
        .filter(|name| node.search_name(name).0 == 404)
        .inspect(|name| {
            assert!(
                !node.store_root().join(name).exists(),
                "{name} is neither recorded nor taken out of the store"
            );
        })
        .count();
    let counted = logged_count(report, field).unwrap_or(0) as usize;
    undone > 0 && counted >= undone
}

#[test]
fn kill_9_during_concurrent_uploads_loses_no_acknowledged_upload_and_leaves_no_orphans() {
    let mut node = TestNode::with_config(CONFIG);
    let mut attempted: HashMap<String, Upload> = HashMap::new();
    let mut acked: Vec<Upload> = Vec::new();
    let (mut single_recovered, mut put_recovered) = (false, false);
    let mut rounds = 0;
    while rounds < MIN_ROUNDS || !(single_recovered && put_recovered) {
        let round = rounds;
        assert!(
            round < MAX_ROUNDS,
            "after {MAX_ROUNDS} rounds, start-up recovery had restored an interrupted single \
             commit: {single_recovered}, taken back an interrupted batch_put: {put_recovered}"
        );
        rounds += 1;
        let aim = if !single_recovered && (put_recovered || round % 2 == 0) {
            Aim::SingleCommit
        } else {
            Aim::BatchPut
        };
        // A different stopping point each round.
        let progress = (10 + 7 * (round % 3), 1 + round % 3);
        let (reports, caught) = upload_until_killed(&mut node, round, progress, aim);
        for report in reports {
            attempted.extend(report.attempted.into_iter().map(|u| (u.name.clone(), u)));
            acked.extend(report.acknowledged);
        }
        let logged_before = node.log().len();
        node.start_again();
        let report = log_since(&node, logged_before);
        let was_recovered = recovered(&node, &caught, &report);
        match caught.aim {
            Aim::SingleCommit => single_recovered |= was_recovered,
            Aim::BatchPut => put_recovered |= was_recovered,
        }
        eprintln!(
            "round {round}: recovered what the kill caught: {was_recovered}; restored \
             commits {:?}, taken back uploads {:?}",
            logged_count(&report, "restored_commits"),
            logged_count(&report, "taken_back_uploads"),
        );
        assert_consistent(&node, &attempted, &acked);
        // Uploads work again.
        let name = format!("after-restart-{round}");
        let bytes = content(&name, 4096);
        node.upload(&name, &bytes);
        let file = node.file_record(&name);
        assert_eq!(file["checksum"], md5(&bytes).as_str(), "{file}");
        let upload = Upload {
            name: name.clone(),
            size: bytes.len() as u64,
            md5: md5(&bytes),
        };
        attempted.insert(name, upload.clone());
        acked.push(upload);
    }
    assert_consistent(&node, &attempted, &acked);
}

/// The window the stress test above can hit: a commit's bytes were renamed into the
/// store but the node died before the database transaction. Recovery must not leave
/// them there when it fails the transfer (here because it is older than
/// `staging_expiry`): nothing would point at them, and the name could never be
/// committed again.
#[test]
fn unrecorded_bytes_of_an_expired_upload_do_not_stay_in_the_store() {
    let mut node = TestNode::with_config(CONFIG);
    let bytes = content("expired-commit", 5000);
    let staged = node.stage("expired-commit", &bytes);
    fs::write(staging_location(&staged), &bytes).unwrap();
    let in_store = node.store_root().join("expired-commit");
    fs::rename(staging_location(&staged), &in_store).unwrap();
    node.kill();
    let logged_before = node.log().len();
    node.start_again();
    let report = log_since(&node, logged_before);
    assert_eq!(
        logged_count(&report, "restored_commits"),
        Some(1),
        "the recovery report counts the restored commit: {report}"
    );
    let (status, body) = node.search_name("expired-commit");
    assert_eq!(status, 404, "nothing was recorded: {body}");
    assert!(
        !in_store.exists(),
        "recovery failed the transfer but left its unrecorded bytes in the store"
    );
    let (status, body) = node.commit(&staged);
    assert_eq!(status, 404, "the transfer was failed: {body}");
    node.upload("expired-commit", &bytes);
    assert_eq!(fs::read(&in_store).unwrap(), bytes);
}
