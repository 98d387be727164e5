//! Running a step over the files of a batch on several threads, keeping order.
//! Small files make the per-file system calls (open, read, link, unlink) the cost,
//! and those overlap well across cores, except in one directory, whose lock the
//! kernel takes for every entry added or removed: steps that change directories
//! give each directory to one thread.

use std::collections::HashMap;
use std::path::PathBuf;

/// Batches smaller than this run on the calling thread.
const MIN_PARALLEL_ITEMS: usize = 32;
/// Most threads used.
const MAX_THREADS: usize = 4;

fn threads_for(items: usize) -> usize {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if items < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads
    }
}

/// `f` applied to every item, in item order.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads < 2 {
        return items.into_iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    run_chunks(chunks, &f).into_iter().flatten().collect()
}

/// `f` applied to every item, in item order, the items of one directory (as
/// `directory` tells) all on the same thread.
pub fn parallel_map_by_directory<T: Send, R: Send>(
    items: Vec<T>,
    directory: impl Fn(&T) -> Option<PathBuf>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads < 2 {
        return items.into_iter().map(f).collect();
    }
    let mut groups: HashMap<PathBuf, Vec<(usize, T)>> = HashMap::new();
    let count = items.len();
    for (index, item) in items.into_iter().enumerate() {
        let key = directory(&item).unwrap_or_default();
        groups.entry(key).or_default().push((index, item));
    }
    // Largest directories first, each to the thread with the least work so far.
    let mut groups: Vec<Vec<(usize, T)>> = groups.into_values().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut chunks: Vec<Vec<(usize, T)>> = (0..threads).map(|_| Vec::new()).collect();
    for group in groups {
        let lightest = chunks
            .iter_mut()
            .min_by_key(|c| c.len())
            .expect("at least two threads");
        lightest.extend(group);
    }
    let g = |(index, item): (usize, T)| (index, f(item));
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    for (index, result) in run_chunks(chunks, &g).into_iter().flatten() {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

fn run_chunks<T: Send, R: Send>(chunks: Vec<Vec<T>>, f: &(impl Fn(T) -> R + Sync)) -> Vec<Vec<R>> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a drop-box worker thread panicked"))
            .collect()
    })
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
