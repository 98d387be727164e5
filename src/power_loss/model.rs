//! What a power loss leaves at a cut point of a record, in the two models the
//! replay uses (see the module documentation).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::store::durable::record::{Contents, Entry, InodeId, Log, Namespace, Op};

/// The model of a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Only what a sync saw survives.
    SyncedOnly,
    /// Every name survives; bytes only as a sync saw them.
    MetadataKept,
}

/// What is durable after some prefix of the record.
pub struct Durable {
    root: InodeId,
    /// The entries of each directory, as its last sync saw them.
    listings: HashMap<InodeId, BTreeMap<OsString, Entry>>,
    /// The bytes of each file, as its last sync saw them.
    pub contents: Contents,
    /// The database copy of the last durable commit.
    pub database: PathBuf,
}

/// The entries of every directory of `namespace`.
fn listings_of(namespace: &Namespace) -> HashMap<InodeId, BTreeMap<OsString, Entry>> {
    let mut listings: HashMap<InodeId, BTreeMap<OsString, Entry>> = HashMap::new();
    for (path, entry) in namespace {
        if entry.dir {
            listings.entry(entry.inode).or_default();
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        if let Some(directory) = namespace.get(parent) {
            listings
                .entry(directory.inode)
                .or_default()
                .insert(name.to_os_string(), *entry);
        }
    }
    listings
}

impl Durable {
    /// The state when recording started (all of it durable).
    pub fn initial(log: &Log) -> Durable {
        let namespace = &log.initial.namespace;
        Durable {
            root: namespace[Path::new("")].inode,
            listings: listings_of(namespace),
            contents: log.initial.contents.clone(),
            database: log.initial.database.clone(),
        }
    }

    /// Takes one more event into account.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::SyncedFile { inode, bytes, .. } => {
                self.contents.insert(*inode, bytes.clone());
            }
            Op::SyncedDir { inode, entries, .. } => {
                self.listings.insert(*inode, entries.clone());
            }
            Op::SyncedFilesystem {
                namespace,
                contents,
            } => {
                self.listings.extend(listings_of(namespace));
                self.contents
                    .extend(contents.iter().map(|(k, v)| (*k, v.clone())));
            }
            Op::DbCommitted { snapshot } => self.database = snapshot.clone(),
            _ => {}
        }
    }

    /// The names a power loss leaves in `model`; `now` is every name at the cut.
    pub fn namespace(&self, model: Model, now: &Namespace) -> Namespace {
        match model {
            Model::MetadataKept => now.clone(),
            Model::SyncedOnly => {
                let mut namespace = Namespace::new();
                let root = Entry {
                    inode: self.root,
                    dir: true,
                };
                namespace.insert(PathBuf::new(), root);
                let mut placed_dirs = HashSet::from([self.root]);
                self.walk(self.root, Path::new(""), &mut namespace, &mut placed_dirs);
                namespace
            }
        }
    }

    fn walk(
        &self,
        directory: InodeId,
        path: &Path,
        namespace: &mut Namespace,
        placed_dirs: &mut HashSet<InodeId>,
    ) {
        let Some(entries) = self.listings.get(&directory) else {
            return;
        };
        for (name, entry) in entries {
            let child = path.join(name);
            if entry.dir {
                // A directory two stale listings both show exists only once.
                if placed_dirs.insert(entry.inode) {
                    namespace.insert(child.clone(), *entry);
                    self.walk(entry.inode, &child, namespace, placed_dirs);
                }
            } else {
                namespace.insert(child, *entry);
            }
        }
    }
}
