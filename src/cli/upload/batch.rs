//! `quire upload --batch`: every regular file under a directory becomes its own
//! file. Against a quire node the files travel in batches, so the node pays for
//! durability once per batch: small files with their bytes in one `batch_put`
//! request, larger ones staged together (`batch_stage`), copied or streamed, and
//! committed together (`batch_commit`). Against another librarian each file is
//! uploaded on its own, many in flight.
//! A file whose name exists on the node with the same checksum is counted and
//! skipped, so a batch can be re-run after an interruption; one whose name exists
//! with another checksum is a conflict, reported with both checksums (names are
//! never reused). Symbolic links and special files are skipped and listed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use serde::Serialize;

use super::one::{
    ProviderChoice, UploadOutcome, UploadPlan, choose_provider, declared_checksum, upload_one,
};
use super::taken::{self, Comparison, Conflict, Recorded, Taken};
use super::transfer::{Provider, copy_local, stream};
use crate::checksum::hash_bytes;
use crate::cli::output::{counted, human_rate, human_size, items_bar, print_json};
use crate::peer::LibrarianClient;
use crate::protocol::upload::{
    BatchItemError, NAME_TAKEN_START, TransferProvider, UploadBatchCommitRequest,
    UploadBatchPutFile, UploadBatchPutManifest, UploadBatchStageRequest, UploadCompletionRequest,
    UploadInitiationRequest,
};

/// Files up to this size are read once, into memory, by the client, and sent
/// with their manifest in one `upload/batch_put`.
const SMALL_FILE_BYTES: u64 = 256 << 10;
/// Files per batch request.
const BATCH_FILES: usize = 256;
/// Batches in flight at once.
const BATCHES_IN_FLIGHT: usize = 8;
/// Network streams in flight within one batch.
const STREAMS_PER_BATCH: usize = 8;

/// Result of a batch.
#[derive(Debug, Default, Serialize)]
struct BatchSummary {
    uploaded: usize,
    /// Files whose name exists on the node with the same checksum.
    already_existed: usize,
    /// Files whose name exists on the node with a different checksum.
    conflicts: Vec<Conflict>,
    /// Entries that are not regular files.
    skipped: Vec<BatchSkipped>,
    failed: Vec<BatchFailure>,
    bytes: u64,
    seconds: f64,
    files_per_second: f64,
}

#[derive(Debug, Serialize)]
struct BatchFailure {
    path: String,
    error: String,
}

#[derive(Debug, Serialize)]
struct BatchSkipped {
    path: String,
    reason: String,
}

/// How one file of the batch ended.
enum FileOutcome {
    Uploaded(u64),
    /// The name is taken; to be compared with what the node recorded.
    Taken(Box<Taken>),
    /// The name is taken by these very bytes.
    AlreadyExists,
    Conflict(Conflict),
    Failed(String),
}

/// The files under `root` to upload, each with its name on the node, and the
/// entries that are skipped (not regular files), each with the reason.
fn walk(
    root: &std::path::Path,
    prefix: &str,
) -> (Vec<(PathBuf, String)>, Vec<BatchSkipped>, Vec<BatchFailure>) {
    let (mut sources, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(root).display().to_string();
                failed.push(BatchFailure {
                    path,
                    error: format!("cannot read it: {error}"),
                });
                continue;
            }
        };
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let path = entry.path().to_path_buf();
        if !kind.is_file() {
            let reason = if kind.is_symlink() {
                "a symbolic link (links are not followed; upload what it points at instead)"
            } else {
                "not a regular file (a device, socket or pipe)"
            };
            skipped.push(BatchSkipped {
                path: path.display().to_string(),
                reason: reason.to_string(),
            });
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("walked under the root")
            .to_string_lossy()
            .into_owned();
        let name = format!("{}/{relative}", prefix.trim_end_matches('/'));
        sources.push((path, name));
    }
    (sources, skipped, failed)
}

/// Uploads every file under `plan.source` as `plan.name/<relative path>`; `jobs`
/// single uploads are in flight when the node is not a quire node.
pub async fn run(
    client: &LibrarianClient,
    plan: UploadPlan,
    jobs: usize,
    json: bool,
) -> anyhow::Result<()> {
    let (sources, skipped, walk_failures) = walk(&plan.source, &plan.name);
    let progress = items_bar(sources.len() as u64, "uploading", json);
    let started = Instant::now();
    let mut summary = BatchSummary::default();
    for skip in &skipped {
        eprintln!("quire: skipped {}: {}", skip.path, skip.reason);
    }
    summary.skipped = skipped;
    let mut record = |source: PathBuf, outcome: FileOutcome| match outcome {
        FileOutcome::Uploaded(size) => {
            summary.uploaded += 1;
            summary.bytes += size;
        }
        FileOutcome::AlreadyExists => summary.already_existed += 1,
        FileOutcome::Conflict(conflict) => {
            progress.suspend(|| eprintln!("quire: conflict: {}", conflict.describe()));
            summary.conflicts.push(conflict);
        }
        FileOutcome::Taken(taken) => unreachable!("{} was compared", taken.source.display()),
        FileOutcome::Failed(error) => {
            progress.suspend(|| eprintln!("quire: {}: {error}", source.display()));
            summary.failed.push(BatchFailure {
                path: source.display().to_string(),
                error,
            });
        }
    };
    for failure in walk_failures {
        record(
            PathBuf::from(failure.path),
            FileOutcome::Failed(failure.error),
        );
    }
    if plan.quire_node {
        let chunks: Vec<Vec<(PathBuf, String)>> =
            sources.chunks(BATCH_FILES).map(|c| c.to_vec()).collect();
        let mut batches = futures_util::stream::iter(chunks)
            .map(|chunk| upload_chunk(client, &plan, chunk))
            .buffer_unordered(BATCHES_IN_FLIGHT);
        while let Some(outcomes) = batches.next().await {
            progress.inc(outcomes.len() as u64);
            for (source, outcome) in outcomes {
                record(source, outcome);
            }
        }
    } else {
        let mut uploads = futures_util::stream::iter(sources)
            .map(|(source, name)| {
                let plan = UploadPlan {
                    source: source.clone(),
                    name,
                    ..plan.clone()
                };
                async move {
                    let byte_sink = ProgressBar::hidden();
                    let outcome = match upload_one(client, &plan, &byte_sink).await {
                        Ok(UploadOutcome::Uploaded(report)) => FileOutcome::Uploaded(report.size),
                        Ok(UploadOutcome::AlreadyExists { declared, size }) => {
                            FileOutcome::Taken(Box::new(Taken {
                                source: source.clone(),
                                name: plan.name.clone(),
                                size,
                                declared,
                                contents: None,
                                recorded: None,
                            }))
                        }
                        Err(error) => FileOutcome::Failed(format!("{error:#}")),
                    };
                    (source, resolve(client, outcome).await)
                }
            })
            .buffer_unordered(jobs);
        while let Some((source, outcome)) = uploads.next().await {
            progress.inc(1);
            record(source, outcome);
        }
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    summary.seconds = elapsed.as_secs_f64();
    summary.files_per_second = summary.uploaded as f64 / summary.seconds.max(1e-9);
    if json {
        print_json(&summary)?;
    } else {
        println!(
            "uploaded {} ({}, {}, {:.0} files/s); {} already on the node; {}; \
             {} skipped; {} failed",
            counted(summary.uploaded, "file", "files"),
            human_size(summary.bytes),
            human_rate(summary.bytes, elapsed),
            summary.files_per_second,
            summary.already_existed,
            counted(summary.conflicts.len(), "conflict", "conflicts"),
            summary.skipped.len(),
            summary.failed.len()
        );
    }
    let mut problems = Vec::new();
    if !summary.conflicts.is_empty() {
        problems.push(format!(
            "{} from the file of the same name on the node (each listed with both \
             checksums); names are never reused, so upload the changed files under new names",
            counted(summary.conflicts.len(), "file differs", "files differ")
        ));
    }
    if !summary.failed.is_empty() {
        problems.push(format!(
            "{} of the files failed to upload; re-run the same command to retry them (files \
             already on the node are skipped)",
            summary.failed.len()
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// Compares a file whose name was taken with what the node recorded; other
/// outcomes pass through.
async fn resolve(client: &LibrarianClient, outcome: FileOutcome) -> FileOutcome {
    let FileOutcome::Taken(taken) = outcome else {
        return outcome;
    };
    match taken::compare(client, *taken).await {
        Ok(Comparison::Identical(_)) => FileOutcome::AlreadyExists,
        Ok(Comparison::Differs(conflict)) => FileOutcome::Conflict(conflict),
        Err(error) => FileOutcome::Failed(format!("{error:#}")),
    }
}

/// One file of a batch, checksummed and ready to stage.
struct Checked {
    source: PathBuf,
    name: String,
    size: u64,
    request: UploadInitiationRequest,
    /// The bytes of a small file, read while checksumming it.
    contents: Option<Vec<u8>>,
}

/// Uploads one chunk of files through the batch routes.
async fn upload_chunk(
    client: &LibrarianClient,
    plan: &UploadPlan,
    chunk: Vec<(PathBuf, String)>,
) -> Vec<(PathBuf, FileOutcome)> {
    let sources: Vec<PathBuf> = chunk.iter().map(|(s, _)| s.clone()).collect();
    match try_upload_chunk(client, plan, chunk).await {
        Ok(outcomes) => {
            futures_util::stream::iter(outcomes)
                .then(|(source, outcome)| async move { (source, resolve(client, outcome).await) })
                .collect()
                .await
        }
        Err(error) => {
            let message = format!("{error:#}");
            sources
                .into_iter()
                .map(|s| (s, FileOutcome::Failed(message.clone())))
                .collect()
        }
    }
}

async fn try_upload_chunk(
    client: &LibrarianClient,
    plan: &UploadPlan,
    chunk: Vec<(PathBuf, String)>,
) -> anyhow::Result<Vec<(PathBuf, FileOutcome)>> {
    let checked = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || checksum_chunk(&plan, chunk)).await??
    };
    // Small files travel in one request with their bytes unless a local copy was
    // asked for: the node writes them straight into the store, with no staging
    // and no transfer records.
    let (in_body, staged_files): (Vec<Checked>, Vec<Checked>) = checked
        .into_iter()
        .partition(|file| file.contents.is_some() && plan.provider != ProviderChoice::Local);
    let mut outcomes = Vec::new();
    if !in_body.is_empty() {
        outcomes.extend(put_small(client, plan, in_body).await?);
    }
    if !staged_files.is_empty() {
        outcomes.extend(stage_and_send(client, plan, staged_files).await?);
    }
    Ok(outcomes)
}

/// Sends small files and their bytes in one `upload/batch_put`.
async fn put_small(
    client: &LibrarianClient,
    plan: &UploadPlan,
    files: Vec<Checked>,
) -> anyhow::Result<Vec<(PathBuf, FileOutcome)>> {
    let manifest = UploadBatchPutManifest {
        uploader: plan.uploader.clone(),
        deletion_policy: plan.deletion_policy.clone(),
        files: files
            .iter()
            .map(|file| UploadBatchPutFile {
                name: file.name.clone(),
                size: file.size,
                checksum: file.request.upload_checksum.clone(),
            })
            .collect(),
    };
    let contents: Vec<&[u8]> = files
        .iter()
        .map(|file| file.contents.as_deref().unwrap_or_default())
        .collect();
    let answer = client.batch_put(&manifest, &contents).await?;
    if answer.files.len() != files.len() {
        bail!(
            "the node answered {} of the {} files of a batch",
            answer.files.len(),
            files.len()
        );
    }
    Ok(files
        .into_iter()
        .zip(answer.files)
        .map(|(file, item)| commit_outcome(file, item.error))
        .collect())
}

/// Stages files, copies or streams their bytes, and commits them, in batches.
async fn stage_and_send(
    client: &LibrarianClient,
    plan: &UploadPlan,
    checked: Vec<Checked>,
) -> anyhow::Result<Vec<(PathBuf, FileOutcome)>> {
    let staged = client
        .batch_stage(&UploadBatchStageRequest {
            uploads: checked.iter().map(|c| c.request.clone()).collect(),
        })
        .await?;
    let mut outcomes = Vec::new();
    let mut to_send = Vec::new();
    for (file, item) in checked.into_iter().zip(staged.uploads) {
        match (
            item.error,
            item.transfer_id,
            item.staging_location,
            item.staging_name,
        ) {
            (Some(error), ..) if is_taken(&error) => outcomes.push(taken(file, error)),
            (Some(error), ..) => outcomes.push((file.source, FileOutcome::Failed(error.reason))),
            (None, Some(id), Some(location), Some(staging_name)) => {
                let staged = Staged {
                    id,
                    location: PathBuf::from(location),
                    staging_name,
                    upload_name: item.upload_name,
                };
                to_send.push((file, staged))
            }
            _ => outcomes.push((
                file.source,
                FileOutcome::Failed("incomplete batch answer".into()),
            )),
        }
    }
    let Some((_, first)) = to_send.first() else {
        return Ok(outcomes);
    };
    let node_hashes = to_send
        .iter()
        .any(|(file, _)| file.request.record_checksum_algorithm.is_some());
    let provider = choose_provider(
        plan.provider,
        &staged.transfer_providers,
        &first.location,
        node_hashes,
    )?;
    let sent = send_all(client, provider, &to_send).await;
    let hostnames = staged
        .transfer_providers
        .get(provider.protocol_name())
        .map(|p| p.hostnames.clone())
        .unwrap_or_default();
    let mut commits = Vec::new();
    let mut committing = Vec::new();
    for ((file, item), sent) in to_send.into_iter().zip(sent) {
        if let Err(error) = sent {
            outcomes.push((file.source, FileOutcome::Failed(format!("{error:#}"))));
            continue;
        }
        commits.push(UploadCompletionRequest {
            store_name: staged.store_name.clone(),
            staging_name: item.staging_name,
            staging_location: item.location.to_string_lossy().into_owned(),
            upload_name: item.upload_name,
            destination_location: file.name.clone(),
            transfer_provider_name: provider.protocol_name().into(),
            transfer_provider: TransferProvider {
                hostnames: hostnames.clone(),
            },
            meta_mode: "infer".into(),
            deletion_policy: plan.deletion_policy.clone(),
            uploader: plan.uploader.clone(),
            null_obsid: true,
            transfer_id: item.id,
        });
        committing.push(file);
    }
    if commits.is_empty() {
        return Ok(outcomes);
    }
    let committed = client
        .batch_commit(&UploadBatchCommitRequest { commits })
        .await?;
    for (file, item) in committing.into_iter().zip(committed.commits) {
        outcomes.push(commit_outcome(file, item.error));
    }
    Ok(outcomes)
}

/// How a stored or committed item ended.
fn commit_outcome(file: Checked, error: Option<BatchItemError>) -> (PathBuf, FileOutcome) {
    match error {
        None => (file.source, FileOutcome::Uploaded(file.size)),
        Some(error) if is_taken(&error) => taken(file, error),
        Some(error) => (
            file.source,
            FileOutcome::Failed(format!("{} ({})", error.reason, error.suggested_remedy)),
        ),
    }
}

/// Whether an item was refused because its very name is taken (a name nested with
/// a stored file is a failure, told by the node's reason).
fn is_taken(error: &BatchItemError) -> bool {
    error.status == 409
        && (error.recorded_checksum.is_some() || error.reason.starts_with(NAME_TAKEN_START))
}

/// A file refused because its name is taken, with what the node recorded for
/// that name if it said.
fn taken(file: Checked, error: BatchItemError) -> (PathBuf, FileOutcome) {
    let recorded = error
        .recorded_checksum
        .zip(error.recorded_size)
        .map(|(checksum, size)| Recorded { checksum, size });
    let taken = Taken {
        source: file.source.clone(),
        name: file.name,
        size: file.size,
        declared: file.request.upload_checksum,
        contents: file.contents,
        recorded,
    };
    (file.source, FileOutcome::Taken(Box::new(taken)))
}

/// Where the node staged one file of a batch.
struct Staged {
    id: u64,
    location: PathBuf,
    staging_name: String,
    upload_name: String,
}

/// Computes sizes and declared checksums for a chunk.
fn checksum_chunk(
    plan: &UploadPlan,
    chunk: Vec<(PathBuf, String)>,
) -> anyhow::Result<Vec<Checked>> {
    let mut checked = Vec::with_capacity(chunk.len());
    for (source, name) in chunk {
        let (size, checksum, record_algorithm, contents) = match read_small(&source)? {
            Some(contents) => {
                let checksum = hash_bytes(plan.algorithm, &contents).to_string();
                (contents.len() as u64, checksum, None, Some(contents))
            }
            None => {
                let size = std::fs::metadata(&source)?.len();
                let file_plan = UploadPlan {
                    source: source.clone(),
                    ..plan.clone()
                };
                let (checksum, record_algorithm) = declared_checksum(&file_plan, size)?;
                (size, checksum, record_algorithm, None)
            }
        };
        let upload_name = name.rsplit('/').next().unwrap_or(&name).to_string();
        checked.push(Checked {
            request: UploadInitiationRequest {
                upload_size: size as i64,
                upload_checksum: checksum,
                upload_name,
                destination_location: name.clone(),
                uploader: plan.uploader.clone(),
                record_checksum_algorithm: record_algorithm.map(|a| a.name().to_string()),
            },
            source,
            name,
            size,
            contents,
        });
    }
    Ok(checked)
}

/// The contents of a small file (read once: hashed now, sent or written to
/// staging later), or `None` for a large one. The buffer is sized from the
/// file's length: a buffer of the largest small size would be mapped and
/// unmapped for every file.
fn read_small(path: &std::path::Path) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    if length > SMALL_FILE_BYTES {
        return Ok(None);
    }
    let mut contents = Vec::with_capacity(length as usize + 1);
    file.take(SMALL_FILE_BYTES + 1).read_to_end(&mut contents)?;
    Ok((contents.len() as u64 <= SMALL_FILE_BYTES).then_some(contents))
}

/// Writes a small file's contents to its staging location.
fn write_small(contents: &[u8], location: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(location)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", location.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// Moves the bytes of every staged file; one result per file.
async fn send_all(
    client: &LibrarianClient,
    provider: Provider,
    items: &[(Checked, Staged)],
) -> Vec<anyhow::Result<()>> {
    let silent = ProgressBar::hidden();
    match provider {
        Provider::Local => {
            let work: Vec<(PathBuf, Option<Vec<u8>>, PathBuf)> = items
                .iter()
                .map(|(f, s)| (f.source.clone(), f.contents.clone(), s.location.clone()))
                .collect();
            let copied = tokio::task::spawn_blocking(move || {
                work.iter()
                    .map(|(source, contents, location)| match contents {
                        Some(contents) => write_small(contents, location),
                        None => copy_local(source, location, &silent).map(|_| ()),
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match copied {
                Ok(results) => results,
                Err(error) => items
                    .iter()
                    .map(|_| Err(anyhow::anyhow!("copy task failed: {error}")))
                    .collect(),
            }
        }
        Provider::Network => {
            futures_util::stream::iter(items)
                .map(|(file, staged)| {
                    let silent = silent.clone();
                    async move {
                        stream(client, staged.id, &file.source, &silent)
                            .await
                            .map(|_| ())
                    }
                })
                .buffered(STREAMS_PER_BATCH)
                .collect()
                .await
        }
    }
}
