//! Replaying a power loss at every cut point of a record: the directory the node
//! ran in is emptied and rebuilt as the loss would have left it, the database file
//! is replaced by the copy of its last durable commit, and the node is opened and
//! recovered as at start-up.
//!
//! Inode numbers: a rebuilt file gets a new inode, so the identities that intents
//! recorded are translated to the rebuilt inodes before recovery runs (as if the
//! filesystem had kept its numbers); an identity of something the loss did not
//! keep becomes 0, which no file has.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checks::{describe, records_hold, recovered};
use super::model::{Durable, Model};
use crate::config::Config;
use crate::db::DbError;
use crate::db::repo::{dropbox_intents, upload_intents};
use crate::node::{Node, RecoveryMode, open_node, recover};
use crate::store::durable::record::{Contents, InodeId, Log, Namespace};
use crate::store::durable::remove_path;

/// How to open the node again.
pub struct Reopen {
    pub config_text: String,
    pub data_dir: PathBuf,
}

/// Replays every distinct state a power loss could leave at any cut point;
/// returns the findings and how many states were replayed.
pub fn every_cut(log: &Log, reopen: &Reopen) -> (Vec<String>, usize) {
    let mut findings = Vec::new();
    let mut durable = Durable::initial(log);
    let mut replayed = HashSet::new();
    for cut in 0..=log.events.len() {
        let now = match cut {
            0 => log.initial.namespace.clone(),
            _ => {
                let event = &log.events[cut - 1];
                durable.apply(&event.op);
                event.namespace.clone()
            }
        };
        for model in [Model::SyncedOnly, Model::MetadataKept] {
            let namespace = durable.namespace(model, &now);
            let key = state_key(&namespace, &durable.contents, &durable.database);
            if !replayed.insert(key) {
                continue;
            }
            let when = match cut {
                0 => format!("power loss before the first event, {model:?}"),
                _ => format!(
                    "power loss after event {} ({}), {model:?}",
                    cut - 1,
                    describe(log, cut - 1)
                ),
            };
            replay(log, reopen, &namespace, &durable, &when, &mut findings);
        }
    }
    (findings, replayed.len())
}

/// A fingerprint of what a state rebuilds.
fn state_key(namespace: &Namespace, contents: &Contents, database: &Path) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(database.as_os_str().as_encoded_bytes());
    for (path, entry) in namespace {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update(&[0, u8::from(entry.dir)]);
        hasher.update(&entry.inode.device.to_le_bytes());
        hasher.update(&entry.inode.inode.to_le_bytes());
        if !entry.dir {
            let bytes = contents.get(&entry.inode).map_or(&[][..], |b| b.as_slice());
            hasher.update(blake3::hash(bytes).as_bytes());
        }
    }
    *hasher.finalize().as_bytes()
}

fn replay(
    log: &Log,
    reopen: &Reopen,
    namespace: &Namespace,
    durable: &Durable,
    when: &str,
    findings: &mut Vec<String>,
) {
    let identities = rebuild(&log.root, namespace, &durable.contents);
    fs::copy(&durable.database, &log.database).expect("restoring the database copy");
    let node = match open(reopen) {
        Ok(node) => node,
        Err(error) => return findings.push(format!("{when}: the node does not open: {error}")),
    };
    if let Err(error) = translate_intents(&node, &identities) {
        return findings.push(format!("{when}: cannot translate intents: {error}"));
    }
    records_hold(&node, &format!("{when}, before recovery"), findings);
    let recovery = recover(&node, RecoveryMode::StartUp)
        .map(|_| ())
        .and_then(|()| crate::dropbox::recover_intents(&node).map(|_| ()));
    if let Err(error) = recovery {
        return findings.push(format!("{when}: start-up recovery failed: {error}"));
    }
    recovered(&node, &format!("{when}, after recovery"), findings);
}

fn open(reopen: &Reopen) -> anyhow::Result<Arc<Node>> {
    let mut config = Config::from_toml(&reopen.config_text)?;
    config.data_dir = reopen.data_dir.clone();
    Ok(open_node(config)?.0)
}

/// Empties `root` and rebuilds `namespace` in it, files holding their durable
/// bytes (or nothing); returns the rebuilt identity of each recorded one.
fn rebuild(
    root: &Path,
    namespace: &Namespace,
    contents: &Contents,
) -> HashMap<(u64, u64), (u64, u64)> {
    for entry in fs::read_dir(root).expect("listing the replay directory") {
        remove_path(&entry.expect("an entry").path()).expect("emptying the replay directory");
    }
    let mut made: HashMap<InodeId, PathBuf> = HashMap::new();
    let mut identities = HashMap::new();
    for (relative, entry) in namespace {
        if relative.as_os_str().is_empty() {
            continue;
        }
        let path = root.join(relative);
        if entry.dir {
            fs::create_dir(&path).expect("rebuilding a directory");
        } else if let Some(first) = made.get(&entry.inode) {
            fs::hard_link(first, &path).expect("rebuilding a hard link");
        } else {
            let bytes = contents.get(&entry.inode).map_or(&[][..], |b| b.as_slice());
            fs::write(&path, bytes).expect("rebuilding a file");
            made.insert(entry.inode, path.clone());
        }
        let metadata = fs::symlink_metadata(&path).expect("a rebuilt entry");
        identities.insert(
            (entry.inode.device, entry.inode.inode),
            (metadata.dev(), metadata.ino()),
        );
    }
    identities
}

/// Rewrites the inode identities intents recorded to the rebuilt ones.
fn translate_intents(
    node: &Node,
    identities: &HashMap<(u64, u64), (u64, u64)>,
) -> Result<(), DbError> {
    let identities = identities.clone();
    let translate = move |device: &mut u64, inode: &mut u64| {
        (*device, *inode) = identities
            .get(&(*device, *inode))
            .copied()
            .unwrap_or((0, 0));
    };
    node.db.write_blocking(move |txn| {
        for mut intent in upload_intents::all_intents(txn)? {
            for item in &mut intent.items {
                translate(&mut item.device, &mut item.inode);
            }
            upload_intents::put_intent(txn, &intent)?;
        }
        for mut intent in dropbox_intents::all_intents(txn)? {
            for item in &mut intent.items {
                translate(&mut item.source_device, &mut item.source_inode);
                translate(&mut item.target_device, &mut item.target_inode);
            }
            dropbox_intents::put_intent(txn, &intent)?;
        }
        Ok(Ok::<_, DbError>(()))
    })
}
