//! The staged part of a batch of verified copies: copy into one staging directory
//! (in parallel, unsynced), make everything durable at once, evict it from the page
//! cache, read it back from the medium, and commit what read back right.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::{Copied, CopyError, CopyItem, StagingGuard, adopt_existing};
use crate::checksum::{CopySync, copy_in, digest_opened};
use crate::fsroot::Dir;
use crate::store::StagedEntry;
use crate::store::durable::{drop_cached_pages_in, sync_all_in_parallel, sync_filesystem_of};

/// Above this many items, one filesystem sync replaces per-file syncs.
const SYNCFS_MIN_ITEMS: usize = 16;

/// Copies the items at `indexes` into the staging directory, syncs, evicts and
/// re-reads them, and commits those that read back right.
pub(super) fn copy_staged(
    staging: &StagingGuard,
    items: &[CopyItem],
    indexes: &[usize],
) -> Vec<(usize, Result<Copied, CopyError>)> {
    let target = staging.store;
    // The staging directory, opened symlink-free: every copy, sync, eviction and
    // read-back below goes through it.
    let opened = target
        .staging_root()
        .and_then(|root| root.open_dir(Path::new(&staging.name)));
    let staging_dir = match opened {
        Ok(dir) => dir,
        Err(error) => {
            return indexes
                .iter()
                .map(|&index| {
                    let copy = io::Error::new(error.kind(), error.to_string());
                    (index, Err(CopyError::Io(copy)))
                })
                .collect();
        }
    };
    let mut done = Vec::new();
    let mut staged = Vec::new();
    // Copies run in parallel: small files cost system calls more than bandwidth.
    let copies = in_parallel(indexes, |_, &index| {
        let item = &items[index];
        let base_name = Path::new(&item.name)
            .file_name()
            .unwrap_or(item.name.as_ref());
        let mut staged_name = OsString::from(format!("{index}-"));
        staged_name.push(base_name);
        let staged_name = PathBuf::from(staged_name);
        let copied = Dir::open_trusted(&item.source_root).and_then(|source| {
            copy_in(
                &source,
                &item.source,
                &staging_dir,
                &staged_name,
                &[],
                &|_| {},
                CopySync::Caller,
            )
        });
        (index, staged_name, copied)
    });
    for (index, path, copied) in copies {
        let item = &items[index];
        match copied {
            Ok(copied) if item.expected.matches(&copied) => staged.push((index, path)),
            Ok(copied) => done.push((
                index,
                Err(CopyError::SourceDiffers {
                    path: item.source_root.join(&item.source).display().to_string(),
                    size: copied.size,
                    blake3: copied.blake3(),
                }),
            )),
            Err(error) => done.push((index, Err(error.into()))),
        }
    }
    let whole_filesystem = staged.len() >= SYNCFS_MIN_ITEMS;
    let synced = if whole_filesystem {
        vec![sync_filesystem_of(&staging_dir)]
    } else {
        let entries: Vec<(&Dir, &Path)> = staged
            .iter()
            .map(|(_, name)| (&staging_dir, name.as_path()))
            .collect();
        sync_all_in_parallel(&entries)
    };
    // Only clean (synced) pages can be evicted, so the read-back reads the medium.
    let read_back: Vec<Result<StagedEntry, CopyError>> =
        in_parallel(&staged, |position, (index, name)| {
            let sync = &synced[if whole_filesystem { 0 } else { position }];
            if let Err(error) = sync {
                return Err(CopyError::Io(io::Error::new(
                    error.kind(),
                    error.to_string(),
                )));
            }
            drop_cached_pages_in(&staging_dir, name);
            // The handle read back is the one committed: what lands at the name is
            // what was verified.
            let entry = StagedEntry::open(&staging_dir, name)?;
            let read = digest_opened(entry.opened.try_clone()?, &[])?;
            if items[*index].expected.matches(&read) {
                Ok(entry)
            } else {
                Err(CopyError::ReadBackDiffers {
                    store: target.name.clone(),
                })
            }
        });
    let mut to_commit = Vec::new();
    let mut names = Vec::new();
    for ((index, _), verdict) in staged.into_iter().zip(read_back) {
        match verdict {
            Ok(entry) => {
                to_commit.push((entry, items[index].name.clone()));
                names.push((index, items[index].name.clone()));
            }
            Err(error) => done.push((index, Err(error))),
        }
    }
    for ((index, name), committed) in names.into_iter().zip(target.commit_many(to_commit)) {
        let result = match committed {
            Ok(path) => Ok(Copied {
                target: path,
                adopted: false,
            }),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => target
                .root_dir()
                .map_err(CopyError::from)
                .and_then(|root| adopt_existing(target, &root, &name, items[index].expected)),
            Err(error) => Err(error.into()),
        };
        done.push((index, result));
    }
    done
}

/// Copies or reads in flight at once: they wait on system calls and the medium
/// more than on the CPU.
const PARALLEL_READS: usize = 8;

/// `work` applied to every element (with its position) on up to `PARALLEL_READS`
/// threads; results in order.
fn in_parallel<T: Sync, R: Send>(elements: &[T], work: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    if elements.len() <= 1 {
        return elements
            .iter()
            .enumerate()
            .map(|(i, e)| work(i, e))
            .collect();
    }
    let per_thread = elements.len().div_ceil(PARALLEL_READS);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = elements
            .chunks(per_thread)
            .enumerate()
            .map(|(chunk_index, chunk)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, e)| work(chunk_index * per_thread + i, e))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("copy or read-back thread panicked"))
            .collect()
    })
}
