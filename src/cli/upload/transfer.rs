//! Moving an upload's bytes to the node: a local copy into the staging area when the
//! client shares the node's filesystem, otherwise a network stream. Both continue
//! each file from the bytes already staged (by an interrupted run or attempt), and
//! both report progress chunk by chunk.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::ProgressBar;
use tokio_util::io::ReaderStream;

use crate::peer::{LibrarianClient, PeerError};

/// Attempts of a network stream before giving up.
const STREAM_ATTEMPTS: u32 = 6;
/// Bytes a local copy moves between two progress reports.
const COPY_CHUNK_BYTES: u64 = 8 << 20;

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

    /// The name users see, as in `--json` and `--provider`.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Local => "local",
            Provider::Network => "network",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
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

/// One regular file of an upload: where it is here, its path inside a directory
/// upload (`None` for a single file), and its size.
struct SourceFile {
    path: PathBuf,
    inner: Option<String>,
    size: u64,
}

/// The regular files of `source` (a file, or a tree in name order).
fn source_files(source: &Path) -> anyhow::Result<Vec<SourceFile>> {
    let metadata =
        fs::metadata(source).with_context(|| format!("cannot read {}", source.display()))?;
    if !metadata.is_dir() {
        return Ok(vec![SourceFile {
            path: source.to_path_buf(),
            inner: None,
            size: metadata.len(),
        }]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
        let entry = entry?;
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(source)?;
            files.push(SourceFile {
                path: entry.path().to_path_buf(),
                inner: Some(relative.to_string_lossy().into_owned()),
                size: entry.metadata()?.len(),
            });
        }
    }
    Ok(files)
}

/// Copies `source` (a file or a tree) to `destination` in the shared staging area.
/// Each file continues from what an interrupted copy or stream left there (a longer
/// file is cut back); the commit verifies the whole. Returns the bytes that were
/// already there; `progress` counts those first, then every chunk copied.
pub fn copy_local(
    source: &Path,
    destination: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut targets = Vec::new();
    for file in source_files(source)? {
        let target = match &file.inner {
            Some(inner) => destination.join(inner),
            None => destination.to_path_buf(),
        };
        if let Some(parent) = target.parent().filter(|_| file.inner.is_some()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let kept = match fs::metadata(&target) {
            Ok(existing) if existing.len() <= file.size => existing.len(),
            _ => 0,
        };
        targets.push((file, target, kept));
    }
    let reused: u64 = targets.iter().map(|(_, _, kept)| kept).sum();
    progress.inc(reused);
    for (file, target, kept) in targets {
        copy_file_from(&file.path, &target, kept, COPY_CHUNK_BYTES, &mut |n| {
            progress.inc(n)
        })
        .with_context(|| {
            format!(
                "cannot copy {} into {}",
                file.path.display(),
                target.display()
            )
        })?;
    }
    Ok(reused)
}

/// Copies `source` into `destination` from byte `offset` on (what is before it is
/// kept, what is after it is replaced), in chunks of `chunk` bytes, telling
/// `copied` the length of each. The kernel copies (`copy_file_range`, which may
/// clone or copy on the server of a network filesystem) where it can.
fn copy_file_from(
    source: &Path,
    destination: &Path,
    offset: u64,
    chunk: u64,
    copied: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let input = fs::File::open(source)?;
    let size = input.metadata()?.len();
    let output = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(destination)?;
    output.set_len(offset)?;
    let mut position = offset;
    while position < size {
        let wanted = chunk.min(size - position) as usize;
        let (mut from, mut to) = (position, position);
        match rustix::fs::copy_file_range(&input, Some(&mut from), &output, Some(&mut to), wanted) {
            Ok(0) => break, // the source shrank; the commit will say so
            Ok(n) => {
                position += n as u64;
                copied(n as u64);
            }
            Err(errno) if kernel_copy_unsupported(errno) => {
                return copy_by_reading(&input, &output, position, size, chunk, copied);
            }
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

fn kernel_copy_unsupported(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::XDEV, Errno::NOSYS, Errno::OPNOTSUPP, Errno::INVAL].contains(&errno)
}

/// The plain copy, for filesystems without `copy_file_range`.
fn copy_by_reading(
    input: &fs::File,
    output: &fs::File,
    mut position: u64,
    size: u64,
    chunk: u64,
    copied: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; chunk.min(1 << 20) as usize];
    while position < size {
        let wanted = buffer.len().min((size - position) as usize);
        let n = input.read_at(&mut buffer[..wanted], position)?;
        if n == 0 {
            break;
        }
        output.write_all_at(&buffer[..n], position)?;
        position += n as u64;
        copied(n as u64);
    }
    Ok(())
}

/// Streams `source` (a file, or every file of a tree) to the node. Each file
/// continues from the bytes the node has already staged, so a re-run after an
/// interruption resumes. Returns the bytes that were already on the node;
/// `progress` counts those first, then every chunk sent.
pub async fn stream(
    client: &LibrarianClient,
    transfer_id: u64,
    source: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let files = source_files(source)?;
    // Ask for every file first, so the bar counts what was kept before it measures
    // a rate.
    let mut offsets = Vec::with_capacity(files.len());
    for file in &files {
        let staged = staged_bytes(client, transfer_id, file.inner.as_deref()).await?;
        offsets.push(if staged <= file.size { staged } else { 0 });
    }
    let reused: u64 = offsets.iter().sum();
    progress.inc(reused);
    for (file, offset) in files.iter().zip(offsets) {
        stream_file(client, transfer_id, file, offset, progress).await?;
    }
    Ok(reused)
}

/// The staged length of one file, asked with the same retries as a stream.
async fn staged_bytes(
    client: &LibrarianClient,
    transfer_id: u64,
    inner: Option<&str>,
) -> Result<u64, PeerError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.stream_status(transfer_id, inner).await {
            Ok(status) => return Ok(status.staged_bytes),
            Err(error) if attempt < STREAM_ATTEMPTS && error.is_transient() => {
                tokio::time::sleep(pause_before(attempt)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Waits longer after each failed attempt: 0.5 s, 1 s, 2 s...
fn pause_before(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.min(10)))
}

/// Streams one file from `offset`; after a failure, asks the node how much it
/// kept and continues from there.
async fn stream_file(
    client: &LibrarianClient,
    transfer_id: u64,
    file: &SourceFile,
    mut offset: u64,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let size = file.size;
    if offset == size && size > 0 {
        return Ok(());
    }
    let inner = file.inner.as_deref();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let counted_before = progress.position();
        let result = send_from(
            client,
            transfer_id,
            inner,
            &file.path,
            offset,
            size,
            progress,
        )
        .await;
        let error = match result {
            Ok(staged) if staged == size => return Ok(()),
            Ok(staged) => bail!(
                "the node staged {staged} of {size} bytes of {}",
                file.path.display()
            ),
            Err(error) if attempt < STREAM_ATTEMPTS && error.is_transient() => error,
            Err(error) => return Err(error.into()),
        };
        let pause = pause_before(attempt);
        tracing::warn!(%error, ?pause, "upload interrupted; resuming");
        tokio::time::sleep(pause).await;
        // Continue from what the node kept; if it cannot say, from where this
        // attempt started (the node kept at least that).
        let reached = offset + progress.position().saturating_sub(counted_before);
        if let Ok(status) = client.stream_status(transfer_id, inner).await
            && status.staged_bytes <= reached
        {
            offset = status.staged_bytes;
        }
        progress.set_position(progress.position().saturating_sub(reached - offset));
    }
}

async fn send_from(
    client: &LibrarianClient,
    transfer_id: u64,
    inner: Option<&str>,
    source: &Path,
    offset: u64,
    size: u64,
    progress: &ProgressBar,
) -> Result<u64, PeerError> {
    let open = async {
        let mut file = tokio::fs::File::open(source).await?;
        tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset)).await?;
        Ok::<_, std::io::Error>(file)
    };
    let file = open.await.map_err(|e| PeerError::Unreachable {
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
            inner,
            offset,
            size - offset,
            reqwest::Body::wrap_stream(body),
        )
        .await?;
    Ok(status.staged_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_local_copy_reports_each_chunk_as_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (source, target) = (dir.path().join("source"), dir.path().join("target"));
        let bytes = payload(10 * 4096 + 5);
        fs::write(&source, &bytes).unwrap();
        let mut reports = Vec::new();
        copy_file_from(&source, &target, 0, 4096, &mut |n| reports.push(n)).unwrap();
        assert_eq!(fs::read(&target).unwrap(), bytes);
        assert_eq!(reports.len(), 11, "one report per chunk: {reports:?}");
        assert!(reports.iter().all(|n| *n <= 4096), "{reports:?}");
        assert_eq!(reports.iter().sum::<u64>(), bytes.len() as u64);
    }

    #[test]
    fn the_plain_copy_reports_each_chunk_too() {
        let dir = tempfile::tempdir().unwrap();
        let (source, target) = (dir.path().join("source"), dir.path().join("target"));
        let bytes = payload(3 * 4096);
        fs::write(&source, &bytes).unwrap();
        let input = fs::File::open(&source).unwrap();
        let output = fs::File::create(&target).unwrap();
        let mut reports = Vec::new();
        copy_by_reading(&input, &output, 0, 3 * 4096, 4096, &mut |n| reports.push(n)).unwrap();
        assert_eq!(fs::read(&target).unwrap(), bytes);
        assert_eq!(reports, [4096, 4096, 4096]);
    }

    #[test]
    fn a_local_copy_continues_from_what_is_staged_and_cuts_a_longer_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        let bytes = payload(50_000);
        fs::write(&source, &bytes).unwrap();
        // Half of it staged by an interrupted run.
        let staged = dir.path().join("staged");
        fs::write(&staged, &bytes[..20_000]).unwrap();
        let progress = ProgressBar::hidden();
        let reused = copy_local(&source, &staged, &progress).unwrap();
        assert_eq!(reused, 20_000);
        assert_eq!(progress.position(), 50_000);
        assert_eq!(fs::read(&staged).unwrap(), bytes);
        // Something longer than the source is not a prefix: copied afresh.
        let longer = dir.path().join("longer");
        fs::write(&longer, payload(60_000)).unwrap();
        let reused = copy_local(&source, &longer, &ProgressBar::hidden()).unwrap();
        assert_eq!(reused, 0);
        assert_eq!(fs::read(&longer).unwrap(), bytes);
    }

    #[test]
    fn a_tree_is_copied_file_by_file_with_what_was_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("tree");
        fs::create_dir_all(source.join("sub")).unwrap();
        fs::write(source.join("a"), b"alpha").unwrap();
        fs::write(source.join("sub/b"), b"bravo bravo").unwrap();
        let target = dir.path().join("staged");
        fs::create_dir_all(target.join("sub")).unwrap();
        fs::write(target.join("sub/b"), b"bravo").unwrap();
        let progress = ProgressBar::hidden();
        let reused = copy_local(&source, &target, &progress).unwrap();
        assert_eq!(reused, 5);
        assert_eq!(progress.position(), 16);
        assert_eq!(fs::read(target.join("a")).unwrap(), b"alpha");
        assert_eq!(fs::read(target.join("sub/b")).unwrap(), b"bravo bravo");
    }

    #[test]
    fn providers_read_as_in_json() {
        assert_eq!(Provider::Local.to_string(), "local");
        assert_eq!(
            serde_json::to_string(&Provider::Network).unwrap(),
            "\"network\""
        );
        assert_eq!(Provider::Network.label(), "network");
    }
}
