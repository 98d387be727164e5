//! Crash safety: SIGKILL of the node in the middle of a stream of concurrent uploads,
//! three times over on the same data directory.
//!
//! After every restart: each upload whose commit was answered 200 is searchable with
//! its size and checksum and its bytes verify; every recorded file has its bytes;
//! nothing is left in staging (the node runs with `staging_expiry = 0`, so start-up
//! recovery must fail every unfinished transfer and remove all staging); and nothing
//! is in the store that no record points at. Uploads work again after each restart.
//!
//! The kill is triggered by a count of acknowledged commits (and a commit request
//! being under way), not by a clock, so it lands wherever the clients happen to be:
//! staging, copying, hashing, syncing, renaming or recording. The assertions hold
//! wherever that is.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::TestNode;
use crate::support::{commit_body, md5, stage_body, staging_location};

/// Recovery fails every unfinished transfer, so staging must end up empty; every
/// file must fit in one search.
const CONFIG: &str = "staging_expiry = 0\nmax_search_results = 1000000\n";
const ROUNDS: usize = 3;
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
            let Some((status, reply)) =
                self.post("upload/commit", &body, &format!("commit {name}"))
            else {
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
        let Some((status, reply)) = self.put_batch_body(body, what) else {
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

/// Runs one round of concurrent uploads and kills the node once `singles` single
/// commits and `batches` batch commits have been acknowledged, at a moment when some
/// commit request is under way; returns every client's report, after all of them
/// have stopped.
fn upload_until_killed(
    node: &mut TestNode,
    round_number: usize,
    singles: usize,
    batches: usize,
) -> Vec<Report> {
    // Verify the admin's password once, before the clients start.
    let (status, body) = node.post_admin("ping/logged", json!({}));
    assert_eq!(status, 200, "{body}");
    let round = Round::default();
    round
        .running
        .store(SINGLE_CLIENTS + BATCH_CLIENTS, Ordering::SeqCst);
    let (reports, reached) = std::thread::scope(|scope| {
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
        let reached = loop {
            // Enough acknowledged, and a commit under way at this very moment.
            if round.single_commits.load(Ordering::SeqCst) >= singles
                && round.batch_commits.load(Ordering::SeqCst) >= batches
                && round.commits_in_flight.load(Ordering::SeqCst) > 0
            {
                break true;
            }
            if round.running.load(Ordering::SeqCst) == 0 || Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        round.killed.store(true, Ordering::SeqCst);
        node.kill();
        let reports: Vec<Report> = workers
            .into_iter()
            .map(|worker| worker.join().expect("a client thread panicked"))
            .collect();
        (reports, reached)
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
        "round {round_number}: {} uploads acknowledged, {} attempted; cut by the kill: {cut:?}",
        reports.iter().map(|r| r.acknowledged.len()).sum::<usize>(),
        reports.iter().map(|r| r.attempted.len()).sum::<usize>(),
    );
    reports
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

/// The node's last start-up recovery line, for the test's output.
fn last_recovery_report(node: &TestNode) -> String {
    fs::read_to_string(node.dir.path().join("stderr.log"))
        .unwrap_or_default()
        .lines()
        .rfind(|line| line.contains("start-up recovery done"))
        .and_then(|line| line.find("RecoveryReport").map(|at| line[at..].to_string()))
        .unwrap_or_default()
}

#[test]
fn kill_9_during_concurrent_uploads_loses_no_acknowledged_upload_and_leaves_no_orphans() {
    let mut node = TestNode::with_config(CONFIG);
    let mut attempted: HashMap<String, Upload> = HashMap::new();
    let mut acked: Vec<Upload> = Vec::new();
    for round in 0..ROUNDS {
        // A different stopping point each round.
        let singles = 20 + 13 * round;
        let reports = upload_until_killed(&mut node, round, singles, 1 + round);
        for report in reports {
            attempted.extend(report.attempted.into_iter().map(|u| (u.name.clone(), u)));
            acked.extend(report.acknowledged);
        }
        node.start_again();
        eprintln!("round {round}: {}", last_recovery_report(&node));
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
    node.start_again();
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
