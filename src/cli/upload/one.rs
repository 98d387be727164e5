//! Uploading one file (or one directory as one file): checksum, stage, move the
//! bytes, commit.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::ProgressBar;
use reqwest::StatusCode;
use serde::Serialize;

use super::transfer::{Provider, copy_local, shares_filesystem, stream};
use crate::checksum::{Hasher, WORKER_THRESHOLD_BYTES, digest_path};
use crate::cli::output::human_size;
use crate::model::Algorithm;
use crate::peer::{LibrarianClient, PeerError};
use crate::protocol::upload::{
    LOCAL_PROVIDER, NAME_TAKEN_START, NETWORK_PROVIDER, TransferProvider, UploadCompletionRequest,
    UploadInitiationRequest,
};

/// Which provider the user allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderChoice {
    /// Local copy when the node's staging area is visible here, else the network;
    /// the network also for a large file whose md5/sha* the node computes, which it
    /// does while the bytes arrive.
    Auto,
    /// Only a local copy into the shared staging area.
    Local,
    /// Only the network stream.
    Network,
}

/// Everything needed to upload one source.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    pub source: PathBuf,
    pub name: String,
    pub algorithm: Algorithm,
    /// Whether the node is a quire node (it then verifies large uploads by BLAKE3
    /// and computes slow checksums itself, in the same pass).
    pub quire_node: bool,
    pub provider: ProviderChoice,
    pub deletion_policy: String,
    pub uploader: String,
}

/// What one successful upload did.
#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    pub name: String,
    pub size: u64,
    /// The checksum the node recorded, read back from it (`None` if that failed).
    pub checksum: Option<String>,
    /// The checksum declared at staging, which the node verified.
    pub verified_checksum: String,
    pub provider: Provider,
    /// Bytes an interrupted upload had left on the node, which were not sent again.
    pub resumed_bytes: u64,
    pub seconds: f64,
}

/// How one upload ended.
#[derive(Debug)]
pub enum UploadOutcome {
    Uploaded(UploadReport),
    /// A file of that name already exists on the node; `declared` is this file's
    /// checksum as it would have been declared, for comparison.
    AlreadyExists {
        declared: String,
        size: u64,
    },
}

/// The checksum to declare at staging, and the algorithm the node should record
/// instead, if any.
pub(super) fn declared_checksum(
    plan: &UploadPlan,
    size: u64,
) -> anyhow::Result<(String, Option<Algorithm>)> {
    let delegate =
        plan.quire_node && Hasher::is_slow(plan.algorithm) && size >= WORKER_THRESHOLD_BYTES;
    let algorithm = if delegate {
        Algorithm::Blake3
    } else {
        plan.algorithm
    };
    let digests = digest_path(&plan.source, &[algorithm])
        .with_context(|| format!("cannot read {}", plan.source.display()))?;
    let checksum = digests.get(algorithm).expect("computed").to_string();
    Ok((checksum, delegate.then_some(plan.algorithm)))
}

/// Size of a file, or the sum of the files of a tree.
pub fn source_size(path: &Path) -> anyhow::Result<u64> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !metadata.is_dir() {
        return Ok(metadata.len());
    }
    let mut total = 0;
    for entry in walkdir::WalkDir::new(path) {
        let entry = entry?;
        if entry.file_type().is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// Uploads one source. An upload staged before by the same account (an interrupted
/// run) is taken up again: its bytes on the node are kept, and only the rest is
/// sent. If kept bytes turn out not to match, the upload starts again once, afresh.
pub async fn upload_one(
    client: &LibrarianClient,
    plan: &UploadPlan,
    progress: &ProgressBar,
) -> anyhow::Result<UploadOutcome> {
    let started = Instant::now();
    let size = source_size(&plan.source)?;
    progress.set_message("checksumming");
    let (checksum, record_algorithm) = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || declared_checksum(&plan, size)).await??
    };
    progress.set_message("uploading");
    let mut fresh_start = false;
    loop {
        let attempt = attempt_upload(client, plan, size, &checksum, record_algorithm, progress);
        match attempt.await? {
            Attempt::Done(provider, resumed_bytes) => {
                return Ok(UploadOutcome::Uploaded(UploadReport {
                    name: plan.name.clone(),
                    size,
                    checksum: None,
                    verified_checksum: checksum,
                    provider,
                    resumed_bytes,
                    seconds: started.elapsed().as_secs_f64(),
                }));
            }
            Attempt::Taken => {
                return Ok(UploadOutcome::AlreadyExists {
                    declared: checksum,
                    size,
                });
            }
            Attempt::KeptBytesDiffer(error) if !fresh_start => {
                progress.suspend(|| {
                    eprintln!(
                        "quire: the bytes kept from an earlier attempt did not match ({error}); \
                         uploading {} again from the start",
                        plan.source.display()
                    )
                });
                progress.set_position(0);
                progress.set_message("uploading");
                fresh_start = true;
            }
            Attempt::KeptBytesDiffer(error) => return Err(explain_commit_failure(error)),
        }
    }
}

/// How one stage, transfer and commit ended.
enum Attempt {
    /// Committed: the provider used and the bytes that were already staged.
    Done(Provider, u64),
    /// The name is taken.
    Taken,
    /// The commit refused the bytes, some of which were kept from before.
    KeptBytesDiffer(PeerError),
}

async fn attempt_upload(
    client: &LibrarianClient,
    plan: &UploadPlan,
    size: u64,
    checksum: &str,
    record_algorithm: Option<Algorithm>,
    progress: &ProgressBar,
) -> anyhow::Result<Attempt> {
    let upload_name = Path::new(&plan.name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| plan.name.clone());
    let staged = client
        .stage(&UploadInitiationRequest {
            upload_size: size as i64,
            upload_checksum: checksum.to_string(),
            upload_name,
            destination_location: plan.name.clone(),
            uploader: plan.uploader.clone(),
            record_checksum_algorithm: record_algorithm.map(|a| a.name().to_string()),
        })
        .await;
    let staged = match staged {
        Ok(staged) => staged,
        // Only a taken name has a file to compare with; a name nested with a
        // stored file is refused with the node's reason.
        Err(PeerError::Refused { status, reason, .. })
            if status == StatusCode::CONFLICT && reason.starts_with(NAME_TAKEN_START) =>
        {
            return Ok(Attempt::Taken);
        }
        Err(error) => return Err(error.into()),
    };
    let location = PathBuf::from(&staged.staging_location);
    let provider = choose_provider(
        plan.provider,
        &staged.transfer_providers,
        &location,
        record_algorithm.is_some(),
    )?;
    let counted_before = progress.position();
    let moved = match provider {
        Provider::Local => {
            let (source, progress) = (plan.source.clone(), progress.clone());
            tokio::task::spawn_blocking(move || copy_local(&source, &location, &progress))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|copied| copied)
        }
        Provider::Network => stream(client, staged.transfer_id, &plan.source, progress).await,
    };
    let resumed = moved.with_context(|| {
        let reached = progress.position().saturating_sub(counted_before);
        format!(
            "the upload of {} stopped after {} of {}; the node keeps the bytes it received: \
             re-run the same command to resume",
            plan.source.display(),
            human_size(reached),
            human_size(size)
        )
    })?;
    let hostnames = staged
        .transfer_providers
        .get(provider.protocol_name())
        .map(|p| p.hostnames.clone())
        .unwrap_or_default();
    progress.set_message("committing");
    let committed = client
        .commit(&UploadCompletionRequest {
            store_name: staged.store_name,
            staging_name: staged.staging_name,
            staging_location: staged.staging_location,
            upload_name: staged.upload_name,
            destination_location: staged.destination_location,
            transfer_provider_name: provider.protocol_name().to_string(),
            transfer_provider: TransferProvider { hostnames },
            meta_mode: "infer".into(),
            deletion_policy: plan.deletion_policy.clone(),
            uploader: plan.uploader.clone(),
            null_obsid: true,
            transfer_id: staged.transfer_id,
        })
        .await;
    match committed {
        Ok(()) => Ok(Attempt::Done(provider, resumed)),
        Err(error) if error.status() == Some(StatusCode::NOT_ACCEPTABLE) && resumed > 0 => {
            Ok(Attempt::KeptBytesDiffer(error))
        }
        Err(error) if error.is_transient() => Err(anyhow::Error::from(error).context(format!(
            "the upload of {} could not be committed; its bytes stay on the node: re-run the \
             same command to finish it",
            plan.source.display()
        ))),
        Err(error) => Err(explain_commit_failure(error)),
    }
}

/// The provider for an upload staged at `location`. `node_hashes` says that the
/// node computes a slow checksum (md5, sha*) of a large upload: it hashes streamed
/// bytes as they arrive, but a local copy only after the copy ends, so `Auto`
/// streams such an upload even when it could copy it.
pub(super) fn choose_provider(
    choice: ProviderChoice,
    offered: &std::collections::BTreeMap<String, TransferProvider>,
    location: &Path,
    node_hashes: bool,
) -> anyhow::Result<Provider> {
    let local_ok = offered.contains_key(LOCAL_PROVIDER) && shares_filesystem(location);
    let network_ok = offered.contains_key(NETWORK_PROVIDER);
    match choice {
        ProviderChoice::Auto if node_hashes && network_ok => Ok(Provider::Network),
        ProviderChoice::Auto | ProviderChoice::Local if local_ok => Ok(Provider::Local),
        ProviderChoice::Auto | ProviderChoice::Network if network_ok => Ok(Provider::Network),
        ProviderChoice::Local => anyhow::bail!(
            "the node's staging directory {} is not writable from here; use --provider network",
            location.parent().unwrap_or(location).display()
        ),
        _ => anyhow::bail!(
            "the node offers no provider this client can use (offered: {:?}); is it a quire node?",
            offered.keys().collect::<Vec<_>>()
        ),
    }
}

fn explain_commit_failure(error: PeerError) -> anyhow::Error {
    match error.status() {
        Some(StatusCode::NOT_ACCEPTABLE) => anyhow::anyhow!(
            "{error}\nthe node received different bytes than were checksummed here; was the file \
             changed during the upload?"
        ),
        _ => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn auto_streams_what_the_node_hashes_and_copies_the_rest() {
        let staging = tempfile::tempdir().unwrap();
        let location = staging.path().join("upload.dat");
        let offered: BTreeMap<String, TransferProvider> = [LOCAL_PROVIDER, NETWORK_PROVIDER]
            .into_iter()
            .map(|name| (name.to_string(), TransferProvider::default()))
            .collect();
        let choose = |choice, node_hashes| {
            choose_provider(choice, &offered, &location, node_hashes).unwrap()
        };
        assert_eq!(choose(ProviderChoice::Auto, false), Provider::Local);
        assert_eq!(choose(ProviderChoice::Auto, true), Provider::Network);
        assert_eq!(choose(ProviderChoice::Local, true), Provider::Local);
        assert_eq!(choose(ProviderChoice::Network, false), Provider::Network);
        let elsewhere = Path::new("/nonexistent-staging/upload.dat");
        let chosen = choose_provider(ProviderChoice::Auto, &offered, elsewhere, false).unwrap();
        assert_eq!(chosen, Provider::Network, "no shared filesystem: stream");
    }
}
