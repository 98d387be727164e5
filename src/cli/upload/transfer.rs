//! Moving an upload's bytes to the node: a local copy into the staging area when the
//! client shares the node's filesystem, otherwise a network stream that resumes from
//! the bytes already staged after an interruption.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::ProgressBar;
use tokio_util::io::ReaderStream;

use crate::peer::LibrarianClient;

/// Attempts of a network stream before giving up.
const STREAM_ATTEMPTS: u32 = 6;

/// Which provider moved the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Local,
    Network,
}

impl Provider {
    /// The protocol name of the provider.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Provider::Local => crate::protocol::upload::LOCAL_PROVIDER,
            Provider::Network => crate::protocol::upload::NETWORK_PROVIDER,
        }
    }
}

/// Whether this process can write into the staging directory the node made, which
/// means it shares the node's filesystem.
pub fn shares_filesystem(staging_location: &Path) -> bool {
    let Some(staging_dir) = staging_location.parent() else {
        return false;
    };
    staging_dir.is_dir() && rustix::fs::access(staging_dir, rustix::fs::Access::WRITE_OK).is_ok()
}

/// Copies `source` (a file or a tree) to `destination` in the shared staging area.
pub fn copy_local(source: &Path, destination: &Path, progress: &ProgressBar) -> anyhow::Result<()> {
    if source.is_dir() {
        for entry in walkdir::WalkDir::new(source) {
            let entry = entry?;
            let relative = entry.path().strip_prefix(source)?;
            let target = destination.join(relative);
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
            } else if entry.file_type().is_file() {
                let copied = std::fs::copy(entry.path(), &target)
                    .with_context(|| format!("cannot copy into {}", target.display()))?;
                progress.inc(copied);
            }
        }
    } else {
        let copied = std::fs::copy(source, destination)
            .with_context(|| format!("cannot copy into {}", destination.display()))?;
        progress.inc(copied);
    }
    Ok(())
}

/// Streams `source` (a file, or every file of a tree) to the node.
pub async fn stream(
    client: &LibrarianClient,
    transfer_id: u64,
    source: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    if source.is_dir() {
        for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
            let entry = entry?;
            if entry.file_type().is_file() {
                let relative = entry
                    .path()
                    .strip_prefix(source)?
                    .to_string_lossy()
                    .into_owned();
                stream_file(client, transfer_id, Some(&relative), entry.path(), progress).await?;
            }
        }
        Ok(())
    } else {
        stream_file(client, transfer_id, None, source, progress).await
    }
}

/// Streams one file, resuming from the staged length after a failure.
async fn stream_file(
    client: &LibrarianClient,
    transfer_id: u64,
    path: Option<&str>,
    source: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let size = std::fs::metadata(source)?.len();
    let mut offset = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = send_from(client, transfer_id, path, source, offset, size, progress).await;
        match result {
            Ok(staged) if staged == size => return Ok(()),
            Ok(staged) => bail!(
                "the node staged {staged} of {size} bytes of {}",
                source.display()
            ),
            Err(error) if attempt < STREAM_ATTEMPTS && error.is_transient() => {
                let pause = Duration::from_millis(250 * 2u64.pow(attempt));
                tracing::warn!(%error, ?pause, "upload interrupted; resuming");
                tokio::time::sleep(pause).await;
                let staged = client.stream_status(transfer_id, path).await?.staged_bytes;
                progress.set_position(
                    progress
                        .position()
                        .saturating_sub(offset.saturating_sub(staged)),
                );
                offset = staged;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

async fn send_from(
    client: &LibrarianClient,
    transfer_id: u64,
    path: Option<&str>,
    source: &Path,
    offset: u64,
    size: u64,
    progress: &ProgressBar,
) -> Result<u64, crate::peer::PeerError> {
    let open = async {
        let mut file = tokio::fs::File::open(source).await?;
        tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset)).await?;
        Ok::<_, std::io::Error>(file)
    };
    let file = open
        .await
        .map_err(|e| crate::peer::PeerError::Unreachable {
            url: source.display().to_string(),
            message: e.to_string(),
        })?;
    let counted = progress.clone();
    let body = ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counted.inc(bytes.len() as u64);
        }
        chunk
    });
    let status = client
        .stream_upload(
            transfer_id,
            path,
            offset,
            size - offset,
            reqwest::Body::wrap_stream(body),
        )
        .await?;
    Ok(status.staged_bytes)
}
