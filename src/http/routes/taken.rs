//! Batch items refused because their name is taken (409) carry the checksum and
//! size recorded for that name, so a client re-running a batch tells its identical
//! files from changed ones without a search per file.

use crate::db::repo::files;
use crate::node::Node;
use crate::protocol::upload::BatchItemError;

/// Adds what is recorded for each name to its item's error, if that error is a
/// taken name; one read transaction for all of them.
pub(super) fn add_recorded<'a>(
    node: &Node,
    items: impl IntoIterator<Item = (&'a str, &'a mut Option<BatchItemError>)>,
) {
    let taken: Vec<(&str, &mut BatchItemError)> = items
        .into_iter()
        .filter_map(|(name, error)| error.as_mut().map(|error| (name, error)))
        .filter(|(_, error)| error.status == 409)
        .collect();
    if taken.is_empty() {
        return;
    }
    let recorded = node.db.read(|tx| {
        taken
            .iter()
            .map(|(name, _)| files::get_file(tx, name))
            .collect::<Result<Vec<_>, _>>()
    });
    match recorded {
        Ok(recorded) => {
            for ((_, error), file) in taken.into_iter().zip(recorded) {
                if let Some(file) = file {
                    error.recorded_checksum = Some(file.checksum.to_string());
                    error.recorded_size = Some(file.size);
                }
            }
        }
        // The answer stays right without it; a client then searches.
        Err(error) => tracing::warn!(%error, "cannot read the records of taken names"),
    }
}
