//! `quire manifest get`: asks the node for a store's manifest and writes it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::GetArgs;
use crate::cli::output::{human_size, print_json};
use crate::peer::LibrarianClient;
use crate::protocol::manifest::{StoreManifestRequest, StoreManifestResponse};

/// What `get` reports besides the manifest itself.
#[derive(Debug, Serialize)]
struct GetReport {
    output: Option<String>,
    librarian_name: String,
    store_name: String,
    files: usize,
    bytes: u64,
    outgoing_transfers: usize,
    destination_librarian: Option<String>,
}

pub(super) async fn run(client: &LibrarianClient, args: GetArgs, json: bool) -> anyhow::Result<()> {
    let request = StoreManifestRequest {
        store_name: args.store.clone(),
        create_outgoing_transfers: args.destination_librarian.is_some(),
        destination_librarian: args.destination_librarian.clone().unwrap_or_default(),
        disable_store: args.disable_store,
        mark_local_instances_as_unavailable: args.mark_instances_unavailable,
    };
    let manifest = client
        .store_manifest(&request)
        .await
        .with_context(|| format!("cannot get the manifest of store {}", args.store))?;
    let text = serde_json::to_string_pretty(&manifest)?;
    let Some(output) = &args.output else {
        println!("{text}");
        return Ok(());
    };
    write_whole(output, text.as_bytes())?;
    let report = report(&manifest, &args);
    if json {
        return print_json(&report);
    }
    let transfers = match &report.destination_librarian {
        Some(peer) => format!(
            ", {} outgoing transfers to {peer}",
            report.outgoing_transfers
        ),
        None => String::new(),
    };
    println!(
        "wrote the manifest of store {} ({} files, {}{transfers}) to {}",
        report.store_name,
        report.files,
        human_size(report.bytes),
        output.display()
    );
    Ok(())
}

fn report(manifest: &StoreManifestResponse, args: &GetArgs) -> GetReport {
    GetReport {
        output: args.output.as_ref().map(|p| p.display().to_string()),
        librarian_name: manifest.librarian_name.clone(),
        store_name: manifest.store_name.clone(),
        files: manifest.store_files.len(),
        bytes: manifest.store_files.iter().map(|f| f.size).sum(),
        outgoing_transfers: manifest
            .store_files
            .iter()
            .filter(|f| f.outgoing_transfer_id >= 0)
            .count(),
        destination_librarian: args.destination_librarian.clone(),
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over
/// `path`: a reader never sees half a manifest.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temporary = directory.join(format!(".{}.partial", name.to_string_lossy()));
    let mut file = std::fs::File::create(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
