//! Asking the peers that hold remote instances of a file whether their copies are
//! good (`validate/file`), for `rolling_deletion`.
//!
//! Invariant: only rows that a peer computed to match, with the same checksum as
//! our record, count as copies; a mismatch or an unanswered question is never
//! counted as a copy, and is reported so that the caller keeps its local copy.

use std::collections::{HashMap, HashSet};

use super::TaskContext;
use crate::model::{Checksum, File};
use crate::peer::registry::client_for;
use crate::peer::{LibrarianClient, PeerError};

/// What the peers said about one file.
pub enum Answer {
    /// This many distinct copies matched.
    Verified(usize),
    /// A peer reports a copy that does not match.
    Mismatch { librarian: String, detail: String },
    /// A peer could not be asked, or did not answer.
    Unanswered {
        librarian: String,
        error: String,
        /// Whether this is the first failure with this peer in this run (later
        /// ones are not reported again).
        first: bool,
    },
}

/// Peer clients for one run, built once per peer.
pub struct Downstream<'a> {
    context: &'a TaskContext,
    clients: HashMap<String, LibrarianClient>,
    /// Peers that failed during this run: not asked again until the next run.
    failed: HashSet<String>,
}

impl<'a> Downstream<'a> {
    pub fn new(context: &'a TaskContext) -> Downstream<'a> {
        Downstream {
            context,
            clients: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    /// Asks every librarian in `holders` about its copies of `file`. Stops at the
    /// first mismatch or failure.
    pub fn check(&mut self, file: &File, holders: &[String]) -> Answer {
        let own_name = self.context.node().config.name.clone();
        let mut copies = HashSet::new();
        for librarian in holders {
            if self.failed.contains(librarian) {
                return Answer::Unanswered {
                    librarian: librarian.clone(),
                    error: "it failed earlier in this run".into(),
                    first: false,
                };
            }
            let rows = match self.validate(librarian, &file.name) {
                Ok(rows) => rows,
                Err(error) => {
                    self.failed.insert(librarian.clone());
                    return Answer::Unanswered {
                        librarian: librarian.clone(),
                        error: error.to_string(),
                        first: true,
                    };
                }
            };
            for row in rows {
                if row.librarian == own_name {
                    continue;
                }
                let same_record = Checksum::parse(&row.original_checksum)
                    .is_ok_and(|c| c == file.checksum)
                    && row.original_size == file.size;
                if !(same_record && row.computed_same_checksum) {
                    return Answer::Mismatch {
                        librarian: row.librarian,
                        detail: format!(
                            "instance {} holds {} bytes with {} (computed_same_checksum {}), \
                             recorded as {} bytes with {}",
                            row.instance_id,
                            row.current_size,
                            row.current_checksum,
                            row.computed_same_checksum,
                            row.original_size,
                            row.original_checksum
                        ),
                    };
                }
                copies.insert((row.librarian, row.store, row.instance_id));
            }
        }
        Answer::Verified(copies.len())
    }

    fn validate(
        &mut self,
        librarian: &str,
        file_name: &str,
    ) -> Result<Vec<crate::protocol::validate::FileValidationResponseItem>, PeerError> {
        if !self.clients.contains_key(librarian) {
            let client = client_for(self.context.node(), librarian)?;
            self.clients.insert(librarian.to_string(), client);
        }
        let client = &self.clients[librarian];
        self.context.block_on(client.validate(file_name))
    }
}
