//! A node in a directory of its own whose commit paths are recorded, and the
//! verification of what was recorded: order checks, then a power loss replayed at
//! every cut point.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checks::{DropboxDirs, StoreDirs, order};
use super::replay::{Reopen, every_cut};
use crate::config::Config;
use crate::node::{Node, open_node};
use crate::store::Store;
use crate::store::durable::record::{Acked, Log, Op, Recorder};

/// The account the scenarios act as.
pub const CALLER: &str = "admin";

pub struct Harness {
    _dir: tempfile::TempDir,
    /// Everything the node has lives under here.
    pub root: PathBuf,
    pub data_dir: PathBuf,
    config_text: String,
    pub node: Arc<Node>,
    recorder: Option<Arc<Recorder>>,
    dropbox: Option<DropboxDirs>,
}

impl Harness {
    /// Opens a node with `config_text`; `prepare` runs first, on the data
    /// directory (to plug in drives).
    pub fn open(config_text: &str, prepare: impl FnOnce(&Path)) -> Harness {
        let dir = tempfile::tempdir().expect("a directory for the node");
        let root = std::fs::canonicalize(dir.path()).expect("a canonical directory");
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir).expect("the data directory");
        prepare(&data_dir);
        let mut config = Config::from_toml(config_text).expect("a valid configuration");
        config.data_dir = data_dir.clone();
        let node = open_node(config).expect("the node opens").0;
        Harness {
            _dir: dir,
            root,
            data_dir,
            config_text: config_text.to_string(),
            node,
            recorder: None,
            dropbox: None,
        }
    }

    /// Names the drop-box (`<data>/<relative>`, prefix `prefix`) whose removals
    /// the order checks look at.
    pub fn watch_dropbox(&mut self, relative: &str, prefix: &str) {
        self.dropbox = Some(DropboxDirs {
            root: self.data_dir.join(relative),
            prefix: prefix.to_string(),
        });
    }

    /// Starts recording; what exists now counts as durable.
    pub fn record(&mut self) {
        let database = self.node.db.path().to_path_buf();
        self.recorder = Some(Recorder::start(&self.root, &database));
    }

    /// Records that `what` was answered with success for `names`, each with a
    /// copy on `store`.
    pub fn acknowledge(&self, what: &str, store: &Store, names: &[String]) {
        let records = names
            .iter()
            .map(|name| Acked {
                name: name.clone(),
                store_id: store.id,
            })
            .collect();
        self.recorder
            .as_ref()
            .expect("recording")
            .acknowledge(what, records);
    }

    /// The store called `name`.
    pub fn store(&self, name: &str) -> Arc<Store> {
        self.node.stores.by_name(name).expect("a store").clone()
    }

    /// The first store.
    pub fn main_store(&self) -> Arc<Store> {
        self.node.stores.all()[0].clone()
    }

    /// Stops recording and the node, checks the record's order and replays a
    /// power loss at every cut point; panics with every finding.
    pub fn verify(mut self) {
        let stores = StoreDirs::of(&self.node);
        let log = self.recorder.take().expect("recording").finish();
        // Nothing may act on the directory while it is rebuilt.
        drop(self.node);
        assert_covers_a_commit(&log);
        let mut findings = order(&log, &stores, self.dropbox.as_ref());
        let reopen = Reopen {
            config_text: self.config_text.clone(),
            data_dir: self.data_dir.clone(),
        };
        let (replayed, states) = every_cut(&log, &reopen);
        findings.extend(replayed);
        assert!(
            findings.is_empty(),
            "{} findings in {} events, {states} power-loss states:\n{}",
            findings.len(),
            log.events.len(),
            findings
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        eprintln!(
            "{} events recorded, {states} power-loss states replayed",
            log.events.len()
        );
    }
}

/// A record that holds no sync, no new name, no commit or no acknowledgement
/// would check nothing.
fn assert_covers_a_commit(log: &Log) {
    let has = |wanted: fn(&Op) -> bool| log.events.iter().any(|e| wanted(&e.op));
    assert!(
        has(|op| matches!(
            op,
            Op::SyncedFile { .. } | Op::SyncedDir { .. } | Op::SyncedFilesystem { .. }
        )),
        "the record holds no sync"
    );
    assert!(
        has(|op| matches!(op, Op::Renamed { .. } | Op::Linked { .. })),
        "the record holds no new name"
    );
    assert!(
        has(|op| matches!(op, Op::DbCommitted { .. })),
        "the record holds no commit"
    );
    assert!(
        has(|op| matches!(op, Op::Acknowledged { .. } | Op::Removed { .. })),
        "the record holds no acknowledgement"
    );
}

/// Runs `future` on a runtime of its own (the harness itself blocks, so it runs
/// outside of any runtime).
pub fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}
