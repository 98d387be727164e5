//! Byte movers: how the files of a send-queue batch reach their destination's
//! staging. `local` copies into a staging directory on a filesystem both hosts
//! share (the Librarian's own provider); `quire_http` streams into a quire peer's
//! staging over HTTP(S), resuming from what the destination holds.
//!
//! Invariants: a source is read through its store's root, symlink-free, and hashed
//! in the pass that sends it; a file whose bytes differ from the source copy's
//! recorded BLAKE3 is reported (`FileOutcome::SourceDiffers`), never reported
//! moved. Movers decide nothing about transfers or records: the queue tasks do.

pub mod local;
pub mod pace;
pub mod quire_http;

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::db::repo::instances;
use crate::fsroot::Kind;
use crate::model::Instance;
use crate::node::Node;

pub use pace::Pace;

/// One file to move: its source copy, opened, and where it goes.
#[derive(Debug)]
pub struct Outbound {
    /// Position of the file in its batch.
    pub index: usize,
    pub file_name: String,
    pub source: fs::File,
    pub size: u64,
    /// The source copy's recorded BLAKE3.
    pub blake3: [u8; 32],
    pub destination_transfer_id: u64,
    pub staging_location: String,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Every byte is at the destination; `sent` of them travelled in this attempt.
    Moved { sent: u64 },
    /// The destination refused the file for good (its transfer is closed, the name
    /// is not allowed...): the reason.
    Refused(String),
    /// The source copy's bytes differ from its record; nothing is reported moved.
    SourceDiffers,
}

/// The destination could not be reached, or failed: the batch is tried again
/// later. What it holds is kept, so the next attempt continues from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The instances with a corrupt-file record: never sent while another copy may be.
pub fn corrupt_copies(node: &Node) -> Result<HashSet<u64>, String> {
    node.db
        .read(|tx| {
            Ok(instances::all_corrupt(tx)?
                .into_iter()
                .map(|c| c.instance_id)
                .collect())
        })
        .map_err(|e| format!("cannot read the corrupt-file records: {e}"))
}

/// A source copy opened for sending.
#[derive(Debug)]
pub struct SourceCopy {
    pub file: fs::File,
    /// Its size on disk now.
    pub size: u64,
    pub instance: Instance,
}

/// Opens the source copy of `file_name` for sending: an available instance on a
/// store of this node that is not in `corrupt` (see [`corrupt_copies`]), reached
/// symlink-free from the store's root. Directories are
/// not sent (yet): the reason says so.
pub fn open_source(
    node: &Node,
    file_name: &str,
    corrupt: &HashSet<u64>,
) -> Result<SourceCopy, String> {
    let candidates = node
        .db
        .read(|tx| instances::of_file(tx, file_name))
        .map_err(|e| format!("cannot read the copies of {file_name}: {e}"))?;
    let mut last_problem = format!("{file_name} has no available copy on this node");
    // A copy found corrupt is never sent while another may be.
    for instance in candidates
        .into_iter()
        .filter(|i| i.available && !corrupt.contains(&i.id))
    {
        let Some(store) = node.stores.by_id(instance.store_id) else {
            continue;
        };
        let opened = store
            .root_dir()
            .and_then(|root| root.open_entry(Path::new(file_name)));
        match opened {
            Ok(crate::fsroot::Opened::File(file, meta)) => {
                return Ok(SourceCopy {
                    file,
                    size: meta.size,
                    instance,
                });
            }
            Ok(crate::fsroot::Opened::Dir(_, meta)) if meta.kind == Kind::Dir => {
                last_problem = format!(
                    "{file_name} is a directory; quire sends directories with the local \
                     provider only, not yet over the network"
                );
            }
            Ok(_) => {}
            Err(error) => {
                last_problem = format!("cannot open {file_name} on store {}: {error}", store.name);
            }
        }
    }
    Err(last_problem)
}
