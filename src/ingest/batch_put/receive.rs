//! Step 2 of a batch upload (blocking): the body's bytes, file after file in
//! manifest order, each written into an unnamed file in its target directory and
//! hashed in the same pass, then verified against what the manifest declared.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use bytes::Bytes;

use crate::checksum::{Digester, Digests};
use crate::ingest::IngestError;
use crate::ingest::commit::verify::matches_declared;
use crate::model::Checksum;
use crate::store::{ParentDirs, Store, UnnamedFile};

/// What the bytes of one file must be; `checksum` is `None` for a file refused
/// before its bytes arrive, whose bytes are skipped.
#[derive(Debug, Clone)]
pub struct Expected {
    pub name: String,
    pub size: u64,
    pub checksum: Option<Checksum>,
}

impl Expected {
    pub fn accept(name: &str, size: u64, checksum: Checksum) -> Expected {
        Expected {
            name: name.to_string(),
            size,
            checksum: Some(checksum),
        }
    }

    pub fn skip(size: u64) -> Expected {
        Expected {
            name: String::new(),
            size,
            checksum: None,
        }
    }

    pub fn is_accepted(&self) -> bool {
        self.checksum.is_some()
    }
}

/// A file whose bytes arrived whole and match the manifest, not yet named.
pub struct Received {
    pub name: String,
    pub checksum: Checksum,
    pub digests: Digests,
    pub file: UnnamedFile,
    /// Identity of the unnamed file's inode.
    pub device: u64,
    pub inode: u64,
}

/// Reads the files' bytes from `chunks`. `store` is where accepted files go (it
/// is `None` only when no file is accepted). One entry per expected file.
pub fn receive(
    store: Option<&Store>,
    expected: Vec<Expected>,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<Vec<Result<Option<Received>, IngestError>>, IngestError> {
    let mut results = Vec::with_capacity(expected.len());
    // The directories of the batch's files, each opened (symlink-free) once.
    let mut made_dirs = store
        .map(ParentDirs::of)
        .transpose()
        .map_err(|e| IngestError::io("cannot open the store", e))?;
    let mut files = expected.into_iter();
    let mut current = files
        .next()
        .map(|e| Current::start(store, e, made_dirs.as_mut()));
    while let Some(mut chunk) = chunks.blocking_recv() {
        while !chunk.is_empty() {
            let Some(file) = current.as_mut() else {
                // Nothing after the last file is read: the body is refused as soon
                // as it runs past its manifest.
                return Err(IngestError::BodyTooLong {
                    extra: chunk.len() as u64,
                });
            };
            let take = (file.remaining as usize).min(chunk.len());
            file.feed(chunk.split_to(take));
            if file.remaining == 0 {
                results.push(current.take().expect("a current file").finish());
                current = files
                    .next()
                    .map(|e| Current::start(store, e, made_dirs.as_mut()));
            }
        }
    }
    // Files of zero bytes need no chunk to finish.
    while let Some(file) = current.take() {
        if file.remaining > 0 {
            results.push(Err(IngestError::BodyEnded {
                expected: file.expected.size,
                received: file.expected.size - file.remaining,
            }));
        } else {
            results.push(file.finish());
        }
        current = files
            .next()
            .map(|e| Current::start(store, e, made_dirs.as_mut()));
    }
    Ok(results)
}

/// The file whose bytes are arriving.
struct Current {
    expected: Expected,
    remaining: u64,
    /// Where the bytes go, unless the file was refused (`Ok(None)`: skipped
    /// before they came; `Err`: refused on the way).
    sink: Result<Option<(UnnamedFile, Digester)>, IngestError>,
}

impl Current {
    fn start(store: Option<&Store>, expected: Expected, made: Option<&mut ParentDirs>) -> Current {
        let sink = match (&expected.checksum, store, made) {
            (Some(checksum), Some(store), Some(made)) => store
                .create_unnamed(&expected.name, made)
                .map(|file| {
                    let digester = Digester::new(&[checksum.algorithm], Some(expected.size));
                    Some((file, digester))
                })
                .map_err(|e| match crate::fsroot::refusal(&e) {
                    // A link (or a file) planted where a directory of the name
                    // belongs: refused, never followed.
                    Some(_) => IngestError::OccupiedOnDisk {
                        name: expected.name.clone(),
                        store: store.name.clone(),
                    },
                    None => IngestError::io("cannot create the file in the store", e),
                }),
            _ => Ok(None),
        };
        Current {
            remaining: expected.size,
            expected,
            sink,
        }
    }

    /// Writes and hashes the next bytes of the file (or skips them).
    fn feed(&mut self, bytes: Bytes) {
        self.remaining -= bytes.len() as u64;
        if let Ok(Some((file, digester))) = &mut self.sink {
            if let Err(error) = file.file().write_all(&bytes) {
                self.sink = Err(IngestError::io("cannot write the file", error));
                return;
            }
            digester.update(bytes);
        }
    }

    /// The file once all its bytes arrived: verified against the manifest.
    fn finish(self) -> Result<Option<Received>, IngestError> {
        let Some((mut file, digester)) = self.sink? else {
            return Ok(None);
        };
        let checksum = self
            .expected
            .checksum
            .expect("only accepted files have a sink");
        let digests = matches_declared(self.expected.size, &checksum, digester.finish())?;
        let metadata = file
            .file()
            .metadata()
            .map_err(|e| IngestError::io("cannot read back the written file", e))?;
        Ok(Some(Received {
            name: self.expected.name,
            checksum,
            digests,
            device: metadata.dev(),
            inode: metadata.ino(),
            file,
        }))
    }
}
