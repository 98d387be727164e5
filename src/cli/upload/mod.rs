//! `quire upload`: one file, one directory as one file, or (with `--batch`) every
//! file under a directory as its own file with many uploads in flight.

mod batch;
mod one;
mod transfer;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::Args;

use super::connection::ConnectionArgs;
use super::output::{bytes_bar, human_rate, human_size, print_json};
use crate::model::Algorithm;
pub use one::{ProviderChoice, UploadOutcome, UploadPlan, UploadReport, upload_one};

/// Options of `quire upload`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  quire upload x.dat obs/x.dat                 one file
  quire upload run42/ obs/run42                a directory, as one file
  quire upload --batch run42/ obs/run42        every file under run42/ as its own file
  quire upload --checksum md5 big.dat big.dat  record an md5 checksum

The bytes are copied into the node's staging area when it is visible from here (a
shared filesystem), and streamed over HTTP otherwise; an interrupted stream resumes
from the bytes already staged. Names are never reused: uploading an existing name
fails (with --batch, existing names are counted and skipped, so a batch can be
re-run).

Exit status: 0 when every file was uploaded (or already existed), 1 otherwise.")]
pub struct UploadArgs {
    /// The local file or directory to upload.
    pub local: PathBuf,
    /// The name it gets on the node (its destination_location). With --batch, the
    /// prefix: a file at LOCAL/a/b is uploaded as NAME/a/b.
    pub name: String,
    /// Upload every file under the directory LOCAL as its own file.
    #[arg(long)]
    pub batch: bool,
    /// With --batch against a librarian that is not a quire node: uploads in flight
    /// at once. (A quire node receives batches of 256 files, eight in flight.)
    #[arg(long, short = 'j', default_value_t = 32, value_name = "N")]
    pub jobs: usize,
    /// Checksum algorithm recorded for the file: md5, xxh3, sha1, sha256, sha512 or
    /// blake3.
    #[arg(long, default_value = "xxh3", value_parser = parse_algorithm)]
    pub checksum: Algorithm,
    /// How the bytes travel: a local copy into the node's staging area (when it is
    /// visible from here), or an HTTP stream.
    #[arg(long, value_enum, default_value_t = ProviderChoice::Auto)]
    pub provider: ProviderChoice,
    /// Whether policy-driven tasks may delete the local copy later.
    #[arg(long, value_parser = ["allowed", "disallowed"], default_value = "disallowed")]
    pub deletion_policy: String,
    /// The uploader recorded with the file [default: the account name].
    #[arg(long)]
    pub uploader: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    Algorithm::parse(text).ok_or_else(|| format!("unknown algorithm '{text}'"))
}

/// Runs `quire upload`.
pub fn run(args: UploadArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(upload(args))
}

async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    if !args.local.exists() {
        bail!("{} does not exist", args.local.display());
    }
    let client = args.connection.client()?;
    let quire_node = client.is_quire().await?;
    let plan = UploadPlan {
        source: args.local.clone(),
        name: args.name.clone(),
        algorithm: args.checksum,
        quire_node,
        provider: args.provider,
        deletion_policy: args.deletion_policy.clone(),
        uploader: args
            .uploader
            .clone()
            .unwrap_or_else(|| client.connection().user.clone()),
    };
    if args.batch {
        if !args.local.is_dir() {
            bail!(
                "--batch uploads the files of a directory, and {} is not one",
                args.local.display()
            );
        }
        return batch::run(&client, plan, args.jobs.max(1), args.json).await;
    }
    let size = one::source_size(&args.local)?;
    let progress = bytes_bar(size, "uploading", args.json);
    let started = Instant::now();
    let outcome = upload_one(&client, &plan, &progress).await;
    progress.finish_and_clear();
    match outcome? {
        UploadOutcome::AlreadyExists => bail!(
            "a file called '{}' already exists on the node; names are never reused, so choose another",
            args.name
        ),
        UploadOutcome::Uploaded(report) if args.json => print_json(&report),
        UploadOutcome::Uploaded(report) => {
            let rate = if report.size >= 1 << 20 {
                format!(", {}", human_rate(report.size, started.elapsed()))
            } else {
                String::new()
            };
            println!(
                "uploaded {} as {} ({}, {}{rate}, via {:?})",
                args.local.display(),
                report.name,
                human_size(report.size),
                report.verified_checksum,
                report.provider,
            );
            Ok(())
        }
    }
}
