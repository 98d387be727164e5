//! Running a step over the files of a batch on several threads, keeping order.
//! Small files make the per-file system calls (open, read, link) the cost, and
//! those overlap well across cores and directories.

/// Batches smaller than this run on the calling thread.
const MIN_PARALLEL_ITEMS: usize = 32;
/// Most threads used.
const MAX_THREADS: usize = 4;

/// `f` applied to every item, in item order.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if items.len() < MIN_PARALLEL_ITEMS || threads < 2 {
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
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a drop-box worker thread panicked"))
            .collect()
    })
}
