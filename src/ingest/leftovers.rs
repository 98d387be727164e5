//! Removing the directories a failed placement left in a store (a commit or batch
//! upload creates the parents of its name before the name itself).
//!
//! Invariant: a directory is removed only while it is empty and no name claimed by
//! another placement lies under it (claims are taken before any directory is
//! created for them), so a concurrent placement never loses the directory it
//! made or found. Nothing recorded lies in an empty directory.

use std::path::Path;

use crate::node::{Claim, Node};
use crate::store::Store;

/// Removes the empty parent directories of `name` in `store`, deepest first,
/// stopping at the first one that is not empty or that another claimed name
/// needs. `mine` is the claim that holds `name`. Blocking.
pub fn remove_empty_parents(node: &Node, store: &Store, name: &str, mine: &Claim) {
    // Reached from the store's root symlink-free: a directory replaced by a
    // link is never followed.
    let root = store.root_dir();
    let mut parent = Path::new(name).parent();
    while let Some(directory) = parent.filter(|p| !p.as_os_str().is_empty()) {
        let relative = directory.to_string_lossy();
        let removed = node
            .claims
            .while_none_under(&relative, Some(mine), |needed| {
                // `remove_dir` refuses a directory that is not empty, and a symbolic
                // link (it is not followed). One never made is gone already.
                !needed
                    && match root.as_ref().map(|root| root.remove_dir(directory)) {
                        Ok(Ok(())) => true,
                        Ok(Err(error)) => error.kind() == std::io::ErrorKind::NotFound,
                        Err(_) => false,
                    }
            });
        if !removed {
            break;
        }
        parent = directory.parent();
    }
}
