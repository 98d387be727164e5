//! `quire upload`: one file, one directory as one file, or (with `--batch`) every
//! file under a directory as its own file with many uploads in flight.

mod batch;
mod one;
mod taken;
mod transfer;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::connection::ConnectionArgs;
use super::output::{bytes_bar, human_rate, human_size, print_json};
use crate::model::Algorithm;
use crate::peer::LibrarianClient;
pub use one::{ProviderChoice, UploadOutcome, UploadPlan, UploadReport, upload_one};
use taken::{Comparison, Taken};

/// How long a copy still running after Ctrl-C may take to notice before the
/// command exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Options of `quire upload`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  quire upload x.dat obs/x.dat                 one file
  quire upload run42/ obs/run42                a directory, as one file
  quire upload --batch run42/ obs/run42        every file under run42/ as its own file
  quire upload --checksum md5 big.dat big.dat  record an md5 checksum

The bytes are copied into the node's staging area when it is visible from here (a
shared filesystem), and streamed over HTTP otherwise. An interrupted upload (Ctrl-C,
a lost connection, a node that went down) resumes when the same command is run
again: the bytes the node kept are not sent again. Names are never reused: uploading
an existing name fails. With --batch, a file whose name exists with the same
checksum is counted and skipped, so a batch can be re-run; one whose name exists
with a different checksum is a conflict, listed with both checksums. Symbolic links
and special files are skipped and listed.

Exit status: 0 when every file was uploaded (or was already there, identical), 1
otherwise.")]
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
    let result = runtime.block_on(upload(args));
    // After Ctrl-C a local copy may still be running on a blocking thread; it
    // stops with the process.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
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
        return tokio::select! {
            result = batch::run(&client, plan, args.jobs.max(1), args.json) => result,
            () = interrupted() => bail!(
                "interrupted; re-run the same command to go on: files already on the node \
                 are skipped"
            ),
        };
    }
    let size = one::source_size(&args.local)?;
    let progress = bytes_bar(size, "uploading", args.json);
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = upload_one(&client, &plan, &progress) => outcome,
        () = interrupted() => {
            progress.finish_and_clear();
            bail!(
                "interrupted after {} of {}; the node keeps the bytes it received: re-run the \
                 same command to resume",
                human_size(progress.position()),
                human_size(size)
            );
        }
    };
    progress.finish_and_clear();
    match outcome? {
        UploadOutcome::AlreadyExists { declared, size } => {
            already_exists(&client, &args, declared, size).await
        }
        UploadOutcome::Uploaded(mut report) => {
            report.checksum = recorded_checksum(&client, &report.name).await;
            if args.json {
                return print_json(&report);
            }
            summarize(&args, &report, started);
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C (never, if it cannot be watched).
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The checksum the node recorded for `name`, read back after the commit: the
/// node may have computed it (`record_checksum_algorithm`, a directory).
async fn recorded_checksum(client: &LibrarianClient, name: &str) -> Option<String> {
    match client.find_file(name).await {
        Ok(file) => file.map(|file| file.checksum),
        Err(error) => {
            eprintln!("quire: uploaded {name}, but cannot read its record back: {error}");
            None
        }
    }
}

/// The lines a person reads after an upload: what was resumed, then what was stored.
fn summarize(args: &UploadArgs, report: &UploadReport, started: Instant) {
    if report.resumed_bytes > 0 {
        println!(
            "resumed: {} of {} already on the node",
            human_size(report.resumed_bytes),
            human_size(report.size)
        );
    }
    let sent = report.size - report.resumed_bytes.min(report.size);
    let rate = if sent >= 1 << 20 {
        format!(", {}", human_rate(sent, started.elapsed()))
    } else {
        String::new()
    };
    let checksum = report
        .checksum
        .as_deref()
        .unwrap_or("checksum not read back");
    println!(
        "uploaded {} as {} ({}, {checksum}{rate}, via {})",
        args.local.display(),
        report.name,
        human_size(report.size),
        report.provider,
    );
}

/// The name is taken: say whether the node holds these very bytes.
async fn already_exists(
    client: &LibrarianClient,
    args: &UploadArgs,
    declared: String,
    size: u64,
) -> anyhow::Result<()> {
    let taken = Taken {
        source: args.local.clone(),
        name: args.name.clone(),
        size,
        declared,
        contents: None,
        recorded: None,
    };
    let name = &args.name;
    match taken::compare(client, taken).await {
        Ok(Comparison::Identical(recorded)) => bail!(
            "a file called '{name}' already exists on the node, with the same contents \
             ({recorded}); nothing was uploaded"
        ),
        Ok(Comparison::Differs(conflict)) => bail!(
            "a file called '{name}' already exists on the node with different contents (local \
             {}, recorded {}); names are never reused, so choose another",
            conflict.local_checksum,
            conflict.recorded_checksum
        ),
        Err(error) => bail!(
            "a file called '{name}' already exists on the node; names are never reused, so \
             choose another ({error:#})"
        ),
    }
}
