//! `quire manifest`: the SneakerNet path. `get` writes the manifest of a drive store
//! on the node the drive leaves (optionally creating outgoing transfers to the
//! destination), `ingest` copies the drive's files into the destination node.

mod get;
mod ingest;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::connection::ConnectionArgs;

/// Options of `quire manifest`.
#[derive(Debug, Args)]
#[command(after_help = "\
SneakerNet, from node A to node B with a drive store called `drive` on A:
  A$ quire manifest get --store drive --destination-librarian B \\
         --disable-store --mark-instances-unavailable -o drive/manifest.json
     (unplug the drive, carry it to B, mount it at /mnt/drive)
  B$ quire manifest ingest /mnt/drive/manifest.json --store-root /mnt/drive
  B's `recieve_clone` task then stores the files and tells A, which records B's
  copies and completes its outgoing transfers.

The manifest is the JSON of admin/stores/manifest, so the Librarian's own
`librarian ingest-manifest` reads it too, and `quire manifest ingest` reads the
manifests a Librarian writes.")]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub action: ManifestAction,
    /// Print the result as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What to do with manifests.
#[derive(Debug, Subcommand)]
pub enum ManifestAction {
    /// Write the manifest of a store (run against the node the drive leaves).
    Get(GetArgs),
    /// Copy every file of a manifest from a drive into the node (run against the
    /// node the drive arrives at).
    Ingest(IngestArgs),
}

/// Options of `quire manifest get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The store to list (usually a drive store).
    #[arg(long, value_name = "STORE")]
    pub store: String,
    /// The librarian the drive goes to: every listed file gets an ONGOING outgoing
    /// transfer to it (as `librarian get-store-manifest` does). A file that already
    /// has a live transfer to it keeps that one.
    #[arg(long, short = 'd', value_name = "LIBRARIAN")]
    pub destination_librarian: Option<String>,
    /// Create the outgoing transfers (implied by --destination-librarian; accepted
    /// for scripts that say so explicitly).
    #[arg(long, requires = "destination_librarian")]
    pub create_outgoing_transfers: bool,
    /// Disable the store first, so that nothing new lands on the drive.
    #[arg(long)]
    pub disable_store: bool,
    /// Mark the listed copies unavailable (the drive is leaving this node).
    #[arg(long, alias = "mark-instances-as-unavailable")]
    pub mark_instances_unavailable: bool,
    /// Where to write the manifest [default: stdout]. The file is written whole or
    /// not at all.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Options of `quire manifest ingest`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each file is staged on the node with the manifest's librarian as uploader, copied
from STORE_ROOT/<name> into the staging area (this machine must see the node's
staging directory) while its checksum is computed, and marked STAGED; the node's
recieve_clone task stores it and calls the manifest's librarian back. Run it as an
administrator, or as the account named after the manifest's librarian.

Files the node already has are counted as \"already existed\", so the command can be
re-run after an interruption or a failure. A copy whose checksum does not match the
manifest is not staged (its transfer is failed) and makes the exit status 1.")]
pub struct IngestArgs {
    /// The manifest file (written by `quire manifest get` or
    /// `librarian get-store-manifest`).
    pub manifest: PathBuf,
    /// Where the drive is mounted: each file is read from STORE_ROOT/<name>.
    #[arg(long, value_name = "DIR")]
    pub store_root: PathBuf,
    /// Files copied at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub jobs: usize,
}

/// Runs `quire manifest`.
pub fn run(args: ManifestArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let client = args.connection.client()?;
    runtime.block_on(async {
        match args.action {
            ManifestAction::Get(get) => get::run(&client, get, args.json).await,
            ManifestAction::Ingest(ingest) => ingest::run(&client, ingest, args.json).await,
        }
    })
}
