//! A local file whose name is already taken on the node: the same bytes (nothing
//! to do) or different ones (a conflict, since names are never reused). The
//! recorded checksum comes with a quire node's batch answer; otherwise one search
//! asks for it. A checksum of another algorithm than the one declared is computed
//! here, so both sides are compared (and reported) in the node's algorithm.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use serde::Serialize;

use crate::checksum::{digest_path, hash_bytes};
use crate::model::Checksum;
use crate::peer::LibrarianClient;

/// What the node recorded for a name.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub checksum: String,
    pub size: u64,
}

/// A local file refused because its name is taken.
#[derive(Debug)]
pub struct Taken {
    pub source: PathBuf,
    pub name: String,
    pub size: u64,
    /// The checksum declared for it.
    pub declared: String,
    /// Its bytes, if they were read already (small files of a batch).
    pub contents: Option<Vec<u8>>,
    /// What the node recorded, if it said.
    pub recorded: Option<Recorded>,
}

/// A file that differs from the file of the same name on the node.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub path: String,
    pub name: String,
    pub local_checksum: String,
    pub recorded_checksum: String,
    pub local_size: u64,
    pub recorded_size: u64,
}

impl Conflict {
    /// One line for a person: what differs, with both checksums.
    pub fn describe(&self) -> String {
        let sizes = if self.local_size == self.recorded_size {
            String::new()
        } else {
            format!(
                ", {} bytes here, {} recorded",
                self.local_size, self.recorded_size
            )
        };
        format!(
            "{} differs from '{}' on the node (local {}, recorded {}{sizes})",
            self.path, self.name, self.local_checksum, self.recorded_checksum
        )
    }
}

/// How a taken name compares.
#[derive(Debug)]
pub enum Comparison {
    /// The node holds these very bytes, recorded with this checksum.
    Identical(String),
    Differs(Conflict),
}

/// Compares a taken file with what the node recorded for its name.
pub async fn compare(client: &LibrarianClient, taken: Taken) -> anyhow::Result<Comparison> {
    let recorded = match taken.recorded.clone() {
        Some(recorded) => recorded,
        None => look_up(client, &taken.name).await?,
    };
    let local = local_checksum(
        taken.declared.clone(),
        &recorded,
        taken.contents,
        &taken.source,
    )
    .await
    .with_context(|| format!("cannot read {}", taken.source.display()))?;
    let same = match (Checksum::parse(&local), Checksum::parse(&recorded.checksum)) {
        (Ok(local), Ok(recorded)) => local.matches(&recorded).unwrap_or(false),
        _ => local == recorded.checksum,
    };
    if same && recorded.size == taken.size {
        return Ok(Comparison::Identical(recorded.checksum));
    }
    Ok(Comparison::Differs(Conflict {
        path: taken.source.display().to_string(),
        name: taken.name,
        local_checksum: local,
        recorded_checksum: recorded.checksum,
        local_size: taken.size,
        recorded_size: recorded.size,
    }))
}

/// The record of `name`, from a search.
async fn look_up(client: &LibrarianClient, name: &str) -> anyhow::Result<Recorded> {
    let file = client
        .find_file(name)
        .await
        .with_context(|| format!("'{name}' exists on the node, but its record cannot be read"))?
        .ok_or_else(|| {
            anyhow!("the node says '{name}' exists but finds no such file; re-run the command")
        })?;
    Ok(Recorded {
        checksum: file.checksum,
        size: file.size,
    })
}

/// The local file's checksum in the recorded checksum's algorithm: the declared
/// one if it is of that algorithm, else computed now.
async fn local_checksum(
    declared: String,
    recorded: &Recorded,
    contents: Option<Vec<u8>>,
    source: &std::path::Path,
) -> anyhow::Result<String> {
    let Ok(wanted) = Checksum::parse(&recorded.checksum).map(|c| c.algorithm) else {
        return Ok(declared);
    };
    if Checksum::parse(&declared).is_ok_and(|c| c.algorithm == wanted) {
        return Ok(declared);
    }
    let source = source.to_path_buf();
    tokio::task::spawn_blocking(move || match contents {
        Some(bytes) => Ok(hash_bytes(wanted, &bytes).to_string()),
        None => {
            let digests = digest_path(&source, &[wanted])?;
            Ok(digests.get(wanted).expect("computed").to_string())
        }
    })
    .await?
}
