//! `quire upload --batch`: every regular file under a directory becomes its own
//! file, with many uploads in flight. Files that already exist on the node are
//! counted and skipped, so a batch can be re-run after an interruption.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use futures_util::StreamExt;
use serde::Serialize;

use super::one::{UploadOutcome, UploadPlan, upload_one};
use crate::cli::output::{human_rate, human_size, items_bar, print_json};
use crate::peer::LibrarianClient;

/// Result of a batch.
#[derive(Debug, Default, Serialize)]
struct BatchSummary {
    uploaded: usize,
    already_existed: usize,
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

/// Uploads every file under `plan.source` as `plan.name/<relative path>`.
pub async fn run(
    client: &LibrarianClient,
    plan: UploadPlan,
    jobs: usize,
    json: bool,
) -> anyhow::Result<()> {
    let mut sources: Vec<(PathBuf, String)> = Vec::new();
    for entry in walkdir::WalkDir::new(&plan.source).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            let relative = entry
                .path()
                .strip_prefix(&plan.source)?
                .to_string_lossy()
                .into_owned();
            let name = format!("{}/{relative}", plan.name.trim_end_matches('/'));
            sources.push((entry.path().to_path_buf(), name));
        }
    }
    let progress = items_bar(sources.len() as u64, "uploading", json);
    let byte_sink = indicatif::ProgressBar::hidden();
    let started = Instant::now();
    let mut summary = BatchSummary::default();
    let mut results = futures_util::stream::iter(sources)
        .map(|(source, name)| {
            let plan = UploadPlan {
                source: source.clone(),
                name,
                ..plan.clone()
            };
            let byte_sink = byte_sink.clone();
            async move { (source, upload_one(client, &plan, &byte_sink).await) }
        })
        .buffer_unordered(jobs);
    while let Some((source, outcome)) = results.next().await {
        progress.inc(1);
        match outcome {
            Ok(UploadOutcome::Uploaded(report)) => {
                summary.uploaded += 1;
                summary.bytes += report.size;
            }
            Ok(UploadOutcome::AlreadyExists) => summary.already_existed += 1,
            Err(error) => {
                progress.suspend(|| eprintln!("quire: {}: {error:#}", source.display()));
                summary.failed.push(BatchFailure {
                    path: source.display().to_string(),
                    error: format!("{error:#}"),
                });
            }
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
            "uploaded {} files ({}, {}, {:.0} files/s); {} already existed; {} failed",
            summary.uploaded,
            human_size(summary.bytes),
            human_rate(summary.bytes, elapsed),
            summary.files_per_second,
            summary.already_existed,
            summary.failed.len()
        );
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} of the files failed to upload; re-run the same command to retry them",
            summary.failed.len()
        );
    }
    Ok(())
}
