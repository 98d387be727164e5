//! `quire manifest ingest`: for each file of a manifest, `clone/stage` on the node,
//! a verified copy from the drive into the staging area it names, then
//! `clone/ongoing` and `clone/staged`; the node's `recieve_clone` task stores the
//! files and calls the manifest's librarian back.
//!
//! Re-running is safe: a file the node already has is answered 409 and counted as
//! "already there"; a transfer left INITIATED or STAGED by an interrupted run is
//! failed by the node when the file is staged again (406), and staged afresh. The
//! copy is made before the transfer is marked ONGOING, so an interruption during a
//! copy leaves an INITIATED transfer, which a re-run replaces.
//!
//! A carried drive is untrusted: every listed file is opened from the
//! `--store-root` directory symlink-free (`crate::fsroot`), so a link on the drive,
//! as the file or as any directory on its path, is refused without reading what it
//! points at, and no digest of anything but the drive's own regular files is ever
//! reported.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::ProgressBar;
use reqwest::StatusCode;
use serde::Serialize;

use super::IngestArgs;
use crate::checksum::{CopySync, copy_in};
use crate::cli::failure::Failure as CliFailure;
use crate::cli::output::{bytes_bar, human_rate, human_size, print_json};
use crate::fsroot::{Dir, refusal};
use crate::model::Checksum;
use crate::peer::{LibrarianClient, PeerError};
use crate::protocol::clone::{ALREADY_EXISTS, CloneFailRequest, CloneIds, CloneInitiationRequest};
use crate::protocol::manifest::{ManifestEntry, StoreManifestResponse};

/// How one manifest entry ended.
enum Ended {
    Ingested,
    AlreadyThere,
    Failed(String),
}

/// A file that could not be ingested.
#[derive(Debug, Serialize)]
struct Failure {
    name: String,
    reason: String,
}

/// The summary `--json` prints.
#[derive(Debug, Serialize)]
struct IngestReport {
    manifest: String,
    librarian_name: String,
    store_name: String,
    total: usize,
    ingested: usize,
    already_existed: usize,
    failed: usize,
    bytes_copied: u64,
    seconds: f64,
    failures: Vec<Failure>,
}

/// State shared by the copies in flight.
struct Shared<'a> {
    client: &'a LibrarianClient,
    uploader: &'a str,
    store_root: &'a Path,
    progress: ProgressBar,
    copied: AtomicU64,
    done: AtomicU64,
    total: usize,
    /// Set once the node cannot be reached: the remaining files are not tried.
    unreachable: AtomicBool,
}

pub(super) async fn run(
    client: &LibrarianClient,
    args: IngestArgs,
    json: bool,
) -> anyhow::Result<()> {
    let text = std::fs::read(&args.manifest)
        .with_context(|| format!("cannot read the manifest {}", args.manifest.display()))?;
    let manifest: StoreManifestResponse = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a store manifest", args.manifest.display()))?;
    if !args.store_root.is_dir() {
        let failure = CliFailure::new(format!(
            "the store root {} is not a directory",
            args.store_root.display()
        ));
        return Err(failure
            .remedy("give --store-root the directory the drive is mounted at")
            .into());
    }
    let bytes: u64 = manifest.store_files.iter().map(|f| f.size).sum();
    let shared = Shared {
        client,
        uploader: &manifest.librarian_name,
        store_root: &args.store_root,
        progress: bytes_bar(bytes, "", json),
        copied: AtomicU64::new(0),
        done: AtomicU64::new(0),
        total: manifest.store_files.len(),
        unreachable: AtomicBool::new(false),
    };
    shared
        .progress
        .set_message(format!("0/{} files", shared.total));
    let started = Instant::now();
    let ended: Vec<(String, Ended)> = futures_util::stream::iter(&manifest.store_files)
        .map(|entry| {
            let shared = &shared;
            async move { (entry.name.clone(), ingest_entry(shared, entry).await) }
        })
        .buffer_unordered(args.jobs.max(1))
        .collect()
        .await;
    shared.progress.finish_and_clear();
    let mut report = IngestReport {
        manifest: args.manifest.display().to_string(),
        librarian_name: manifest.librarian_name.clone(),
        store_name: manifest.store_name.clone(),
        total: shared.total,
        ingested: 0,
        already_existed: 0,
        failed: 0,
        bytes_copied: shared.copied.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        failures: Vec::new(),
    };
    for (name, ended) in ended {
        match ended {
            Ended::Ingested => report.ingested += 1,
            Ended::AlreadyThere => report.already_existed += 1,
            Ended::Failed(reason) => report.failures.push(Failure { name, reason }),
        }
    }
    report.failures.sort_by(|a, b| a.name.cmp(&b.name));
    report.failed = report.failures.len();
    print_report(&report, json)?;
    if report.failed > 0 {
        let failure = CliFailure::new(format!(
            "{} of {} files were not ingested",
            report.failed, report.total
        ));
        return Err(failure
            .remedy(
                "fix the causes above and run the same command again (files already on the \
                 node are skipped)",
            )
            .into());
    }
    Ok(())
}

fn print_report(report: &IngestReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    for failure in &report.failures {
        eprintln!("not ingested: {}: {}", failure.name, failure.reason);
    }
    println!(
        "ingested {}/{} files ({}, {}) from the manifest of {} on {}; {}/{} already existed",
        report.ingested,
        report.total,
        human_size(report.bytes_copied),
        human_rate(
            report.bytes_copied,
            std::time::Duration::from_secs_f64(report.seconds)
        ),
        report.store_name,
        report.librarian_name,
        report.already_existed,
        report.total,
    );
    Ok(())
}

/// Ingests one entry; its bytes count on the progress bar whatever the outcome.
async fn ingest_entry(shared: &Shared<'_>, entry: &ManifestEntry) -> Ended {
    let before = shared.progress.position();
    let ended = if shared.unreachable.load(Ordering::Relaxed) {
        Ended::Failed("not tried: the node could not be reached".into())
    } else {
        match ingest_one(shared, entry).await {
            Ok(ended) => ended,
            Err(error) => {
                if matches!(
                    error.downcast_ref::<PeerError>(),
                    Some(PeerError::Unreachable { .. })
                ) {
                    shared.unreachable.store(true, Ordering::Relaxed);
                }
                Ended::Failed(format!("{error:#}"))
            }
        }
    };
    let counted = shared.progress.position().saturating_sub(before);
    if !matches!(ended, Ended::Ingested) {
        shared.progress.inc(entry.size.saturating_sub(counted));
    }
    let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .progress
        .set_message(format!("{done}/{} files", shared.total));
    ended
}

async fn ingest_one(shared: &Shared<'_>, entry: &ManifestEntry) -> anyhow::Result<Ended> {
    let source = shared.store_root.join(&entry.name);
    let on_drive = Dir::open_trusted(shared.store_root)
        .and_then(|drive| drive.try_stat(Path::new(&entry.name)));
    match on_drive {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Ok(Ended::Failed(format!(
                "{} is not on the drive",
                source.display()
            )));
        }
        Err(error) if refusal(&error).is_some() => {
            return Ok(Ended::Failed(format!("{error}; the file is not ingested")));
        }
        Err(error) => {
            return Ok(Ended::Failed(format!(
                "cannot look at {} on the drive: {error}",
                source.display()
            )));
        }
    }
    let expected = Checksum::parse(&entry.checksum)
        .map_err(|e| anyhow::anyhow!("the manifest's checksum {}: {e}", entry.checksum))?;
    let request = CloneInitiationRequest {
        upload_size: entry.size as i64,
        upload_checksum: entry.checksum.clone(),
        upload_name: base_name(&entry.name),
        destination_location: entry.name.clone(),
        uploader: shared.uploader.to_string(),
        source: entry.source.clone(),
        source_transfer_id: entry.outgoing_transfer_id,
    };
    let staged = match stage(shared.client, &request).await {
        Ok(staged) => staged,
        // A conflict is the file itself only when its name is taken; a name
        // inside a stored file (or holding one) is refused for good.
        Err(PeerError::Refused { status, reason, .. })
            if status == StatusCode::CONFLICT && !reason.starts_with(ALREADY_EXISTS) =>
        {
            return Ok(Ended::Failed(reason));
        }
        Err(error) if error.status() == Some(StatusCode::CONFLICT) => {
            return Ok(Ended::AlreadyThere);
        }
        Err(error) if error.status() == Some(StatusCode::TOO_EARLY) => {
            return Ok(Ended::Failed(format!(
                "{error}; another transfer of this file is ONGOING on the node (a concurrent \
                 ingest, or one interrupted between clone/ongoing and clone/staged): wait for \
                 it, or fail it on the node"
            )));
        }
        Err(error) => return Err(error.into()),
    };
    let ids = CloneIds {
        source_transfer_id: staged.source_transfer_id,
        destination_transfer_id: staged.destination_transfer_id,
    };
    let target = PathBuf::from(&staged.staging_location);
    if let Err(problem) = copy_verified(shared, &target, entry, &expected).await {
        let reason = format!("{problem:#}");
        let fail = CloneFailRequest {
            source_transfer_id: ids.source_transfer_id,
            destination_transfer_id: ids.destination_transfer_id,
            reason: format!("manifest ingest: {reason}"),
        };
        if let Err(error) = shared.client.clone_fail(&fail).await {
            tracing::warn!(%error, "cannot fail the transfer of a file that was not copied");
        }
        return Ok(Ended::Failed(reason));
    }
    shared.client.clone_ongoing(ids).await?;
    shared.client.clone_staged(ids).await?;
    Ok(Ended::Ingested)
}

/// `clone/stage`, staged again once if the node failed a transfer of the same file
/// left over from an interrupted run (406).
async fn stage(
    client: &LibrarianClient,
    request: &CloneInitiationRequest,
) -> Result<crate::protocol::clone::CloneInitiationResponse, PeerError> {
    match client.clone_stage(request).await {
        Err(error) if error.status() == Some(StatusCode::NOT_ACCEPTABLE) => {
            client.clone_stage(request).await
        }
        other => other,
    }
}

/// Copies the entry from the drive (opened symlink-free from the store root) into
/// the staging location, hashing in the same pass, and checks size and checksum
/// against the manifest.
async fn copy_verified(
    shared: &Shared<'_>,
    target: &Path,
    entry: &ManifestEntry,
    expected: &Checksum,
) -> anyhow::Result<()> {
    let staging_dir = target.parent().unwrap_or(target);
    if !staging_dir.is_dir() {
        bail!(
            "the node's staging directory {} is not visible from here; run the ingest on a \
             machine that shares the node's filesystem",
            staging_dir.display()
        );
    }
    let Some(staged_name) = target.file_name().map(PathBuf::from) else {
        bail!("the node gave no staging location for {}", entry.name);
    };
    let (store_root, staging_dir) = (shared.store_root.to_path_buf(), staging_dir.to_path_buf());
    let name = PathBuf::from(&entry.name);
    let algorithm = expected.algorithm;
    let progress = shared.progress.clone();
    let digests = tokio::task::spawn_blocking(move || {
        let drive = Dir::open_trusted(&store_root)?;
        let staging = Dir::open_trusted(&staging_dir)?;
        copy_in(
            &drive,
            &name,
            &staging,
            &staged_name,
            &[algorithm],
            &|bytes| progress.inc(bytes),
            CopySync::EachFile,
        )
    })
    .await?
    .map_err(|error| match refusal(&error) {
        // Nothing behind the link was read: the refusal names the path alone.
        Some(_) => anyhow::anyhow!("{error}; the file is not ingested"),
        None => anyhow::anyhow!(
            "cannot copy {} to {}: {error}",
            shared.store_root.join(&entry.name).display(),
            target.display()
        ),
    })?;
    shared.copied.fetch_add(digests.size, Ordering::Relaxed);
    let found = digests.get(algorithm).expect("computed");
    if digests.size != entry.size || found != expected {
        bail!(
            "the copy on the drive is damaged: expected {} bytes with {expected}, read {} bytes \
             with {found}",
            entry.size,
            digests.size
        );
    }
    Ok(())
}

/// The last component of a file name (the clone's `upload_name`).
fn base_name(name: &str) -> String {
    name.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_name_is_the_last_component() {
        assert_eq!(base_name("obs/2026/a.dat"), "a.dat");
        assert_eq!(base_name("a.dat"), "a.dat");
        assert_eq!(base_name("obs/run42/"), "run42");
    }
}
