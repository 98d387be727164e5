//! Steps 5 and 6 of a batch: record the placed files in one transaction, take
//! back whatever could not be recorded, and only then remove the recorded files
//! from the drop-box or move them aside.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::finish::{Finished, Parents, after_ingest};
use super::parallel::parallel_map_by_directory;
use super::prepare::Opened;
use super::record::{RecordAs, forget_intent, record_all};
use super::{Placed, Target, Verdict};
use crate::dropbox::layout::Layout;
use crate::dropbox::problems::Problem;
use crate::fsroot::Dir;
use crate::node::Node;
use crate::store::durable::take_back_in;

/// Steps 5 and 6: records the placed files, takes back what could not be
/// recorded, and removes or moves aside the recorded files.
pub fn record_batch(node: &Node, layout: &Layout, batch: Placed) -> Vec<(PathBuf, Verdict)> {
    let Placed {
        intent,
        targets,
        placed,
        claims: _claims,
    } = batch;
    let mut verdicts = Vec::new();
    let whole_intent = placed.len() == targets.len();
    let recorded = if placed.is_empty() {
        Ok(Vec::new())
    } else {
        let record_as = RecordAs {
            uploader: &layout.config.uploader,
            algorithm: layout.config.checksum,
            deletion_policy: layout.config.deletion_policy,
        };
        record_all(node, intent, &placed, &record_as, whole_intent)
    };
    // Without an answer from the database nothing is recorded.
    let (accepted, database_problem) = match recorded {
        Ok(accepted) => (accepted, None),
        Err(error) => {
            let problem = Problem::Database {
                error: error.to_string(),
            };
            (vec![false; placed.len()], Some(problem))
        }
    };
    let mut finished = Vec::with_capacity(placed.len());
    let mut recorded_names = HashSet::new();
    for (placement, recorded) in placed.into_iter().zip(accepted) {
        if recorded {
            recorded_names.insert(placement.opened.name.clone());
            finished.push(placement.opened);
        } else {
            let name = placement.opened.name.clone();
            let problem = database_problem
                .clone()
                .unwrap_or(Problem::NameTaken { name });
            verdicts.push(failed(placement.opened, problem));
        }
    }
    take_back_unrecorded(node, intent, &targets, &recorded_names);
    let root = match Dir::open_trusted(&layout.root) {
        Ok(root) => root,
        Err(error) => {
            let problem = Problem::AfterIngest {
                error: format!("the drop-box directory cannot be opened: {error}"),
            };
            verdicts.extend(finished.into_iter().map(|f| failed(f, problem.clone())));
            return verdicts;
        }
    };
    let parents = Parents::new(&root);
    verdicts.extend(parallel_map_by_directory(
        finished,
        |file| file.path.parent().map(Path::to_path_buf),
        |file| finish_file(layout, &parents, file, Verdict::Ingested),
    ));
    verdicts
}

/// Takes back whatever the intent placed that is not recorded, then forgets the
/// intent, unless the record transaction did (all recorded) or something could
/// not be taken back (start-up recovery will).
pub(super) fn take_back_unrecorded(
    node: &Node,
    intent: u64,
    targets: &[Target],
    recorded: &HashSet<String>,
) {
    let mut clean = true;
    for target in targets {
        if recorded.contains(&target.name) {
            continue;
        }
        if let Err(error) = take_back_in(&target.parent, &target.base, target.device, target.inode)
        {
            let shown = target.parent.display_path(&target.base);
            tracing::error!(target = %shown.display(), %error, "cannot take back a drop-box placement; start-up will");
            clean = false;
        }
    }
    if clean
        && recorded.len() != targets.len()
        && let Err(error) = forget_intent(node, intent)
    {
        tracing::warn!(intent, %error, "cannot forget a drop-box intent; start-up will");
    }
}

/// Step 6 for a recorded file.
pub(super) fn finish_file(
    layout: &Layout,
    parents: &Parents,
    file: Opened,
    done: Verdict,
) -> (PathBuf, Verdict) {
    match after_ingest(layout, parents, &file) {
        Ok(Finished::Done) => (file.path, done),
        Ok(Finished::ChangedSince(fingerprint)) => {
            (file.path, Verdict::NotReady(Some(fingerprint)))
        }
        Err(error) => failed(
            file,
            Problem::AfterIngest {
                error: error.to_string(),
            },
        ),
    }
}

pub(super) fn failed(file: Opened, problem: Problem) -> (PathBuf, Verdict) {
    let fingerprint = file.fingerprint;
    (file.path, Verdict::Failed(problem, fingerprint))
}
