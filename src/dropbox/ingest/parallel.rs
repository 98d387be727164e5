//! Running a step over the files of a batch on several threads, keeping order.
//! Small files make the per-file system calls (open, read, link, unlink) the cost,
//! and those overlap well across cores, except in one directory, whose lock the
//! kernel takes for every entry added or removed: steps that change directories
//! give each directory to one thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use rayon::prelude::*;

/// Batches smaller than this run on the calling thread.
const MIN_PARALLEL_ITEMS: usize = 32;
/// Most threads used.
const MAX_THREADS: usize = 4;

/// The drop-boxes' own threads (their steps wait in system calls, so the global
/// pool stays free for hashing), one per core up to `MAX_THREADS`, started once
/// and shared by every batch; `None` with a single core.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        if threads < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("quire-dropbox-io-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// The pool, for `items` items (none for a few).
fn pool_for(items: usize) -> Option<&'static rayon::ThreadPool> {
    if items < MIN_PARALLEL_ITEMS {
        return None;
    }
    pool()
}

/// `f` applied to every item, in item order.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    match pool_for(items.len()) {
        Some(pool) => pool.install(|| items.into_par_iter().map(&f).collect()),
        None => items.into_iter().map(f).collect(),
    }
}

/// `f` applied to every item, in item order, the items of one directory (as
/// `directory` tells) all on the same thread, one after the other.
pub fn parallel_map_by_directory<T: Send, R: Send>(
    items: Vec<T>,
    directory: impl Fn(&T) -> Option<PathBuf>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let Some(pool) = pool_for(items.len()) else {
        return items.into_iter().map(f).collect();
    };
    let count = items.len();
    let mut groups: HashMap<PathBuf, Vec<(usize, T)>> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let key = directory(&item).unwrap_or_default();
        groups.entry(key).or_default().push((index, item));
    }
    let groups: Vec<Vec<(usize, T)>> = groups.into_values().collect();
    let f = &f;
    let done: Vec<(usize, R)> = pool.install(|| {
        groups
            .into_par_iter()
            .flat_map_iter(|group| group.into_iter().map(|(index, item)| (index, f(item))))
            .collect()
    });
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    for (index, result) in done {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn results_keep_item_order() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = parallel_map(items.clone(), |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let paths: Vec<PathBuf> = (0..1000)
            .map(|i| PathBuf::from(format!("d{}/f{i}", i % 7)))
            .collect();
        let names =
            parallel_map_by_directory(paths.clone(), |p| p.parent().map(Path::to_path_buf), |p| p);
        assert_eq!(names, paths);
    }
}
