//! The one-pass digester: every requested hash is computed from the same stream of
//! chunks that is being read, received or copied, so no byte is read twice.
//!
//! Fast hashes (BLAKE3, XXH3) run on the calling thread. Slow ones (MD5, SHA-*) run
//! on a worker thread of their own once the input is large, so that a single-file
//! ingest is bound by the slowest hash rather than by the sum of all of them.

use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;

use super::hasher::Hasher;
use crate::model::{Algorithm, Checksum};

/// Chunks sent to the slow-hash worker before the producer waits for it. Bounds the
/// memory held in flight to this many chunks.
const WORKER_QUEUE_CHUNKS: usize = 16;

/// Inputs larger than this get a worker thread for their slow hashes.
pub const WORKER_THRESHOLD_BYTES: u64 = 8 << 20;

/// The digests of one pass over some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub size: u64,
    pub checksums: Vec<Checksum>,
}

impl Digests {
    /// The checksum of `algorithm`, if it was computed.
    pub fn get(&self, algorithm: Algorithm) -> Option<&Checksum> {
        self.checksums.iter().find(|c| c.algorithm == algorithm)
    }

    /// The BLAKE3 digest; every digester computes it.
    pub fn blake3(&self) -> [u8; 32] {
        let checksum = self
            .get(Algorithm::Blake3)
            .expect("BLAKE3 is always computed");
        checksum
            .digest
            .as_slice()
            .try_into()
            .expect("32-byte digest")
    }
}

/// Computes several hashes over a stream of chunks in one pass.
pub struct Digester {
    inline: Vec<Hasher>,
    worker: Option<Worker>,
    /// Slow hashers not yet moved to a worker (small inputs never get one).
    deferred_slow: Vec<Hasher>,
    size: u64,
}

struct Worker {
    chunks: mpsc::SyncSender<Bytes>,
    handle: JoinHandle<Vec<Hasher>>,
}

impl Digester {
    /// A digester for `algorithms` plus BLAKE3. `expected_size` decides whether the
    /// slow hashes get their own thread; pass `None` when the size is unknown.
    pub fn new(algorithms: &[Algorithm], expected_size: Option<u64>) -> Digester {
        let mut wanted: Vec<Algorithm> = algorithms.to_vec();
        wanted.push(Algorithm::Blake3);
        wanted.sort();
        wanted.dedup();
        let (slow, fast): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|a| Hasher::is_slow(*a));
        let mut digester = Digester {
            inline: fast.into_iter().map(Hasher::new).collect(),
            worker: None,
            deferred_slow: slow.into_iter().map(Hasher::new).collect(),
            size: 0,
        };
        if expected_size.is_none_or(|size| size >= WORKER_THRESHOLD_BYTES) {
            digester.start_worker();
        }
        digester
    }

    fn start_worker(&mut self) {
        if self.deferred_slow.is_empty() || self.worker.is_some() {
            return;
        }
        let mut hashers = std::mem::take(&mut self.deferred_slow);
        let (chunks, receiver) = mpsc::sync_channel::<Bytes>(WORKER_QUEUE_CHUNKS);
        let handle = std::thread::Builder::new()
            .name("quire-slow-hash".into())
            .spawn(move || {
                for chunk in receiver {
                    for hasher in &mut hashers {
                        hasher.update(&chunk);
                    }
                }
                hashers
            })
            .expect("spawning a hash worker thread");
        self.worker = Some(Worker { chunks, handle });
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: Bytes) {
        self.size += chunk.len() as u64;
        for hasher in &mut self.inline {
            hasher.update(&chunk);
        }
        match &self.worker {
            Some(worker) => {
                // The worker only stops when this sender is dropped, so a send
                // cannot fail while we hold it.
                let _ = worker.chunks.send(chunk);
            }
            None => {
                for hasher in &mut self.deferred_slow {
                    hasher.update(&chunk);
                }
            }
        }
    }

    /// Feeds a borrowed slice (copied only if a worker needs it).
    pub fn update_slice(&mut self, bytes: &[u8]) {
        if self.worker.is_some() {
            self.update(Bytes::copy_from_slice(bytes));
        } else {
            self.size += bytes.len() as u64;
            for hasher in self.inline.iter_mut().chain(&mut self.deferred_slow) {
                hasher.update(bytes);
            }
        }
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Waits for the worker and returns every digest.
    pub fn finish(self) -> Digests {
        let mut hashers = self.inline;
        hashers.extend(self.deferred_slow);
        if let Some(worker) = self.worker {
            drop(worker.chunks);
            hashers.extend(worker.handle.join().expect("hash worker panicked"));
        }
        let mut checksums: Vec<Checksum> = hashers.into_iter().map(Hasher::finish).collect();
        checksums.sort_by_key(|c| c.algorithm);
        Digests {
            size: self.size,
            checksums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::hasher::hash_bytes;

    #[test]
    fn worker_and_inline_paths_agree() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let algorithms = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Xxh3];
        for expected_size in [None, Some(10)] {
            let mut digester = Digester::new(&algorithms, expected_size);
            for chunk in data.chunks(65_536) {
                digester.update(Bytes::copy_from_slice(chunk));
            }
            let digests = digester.finish();
            assert_eq!(digests.size, data.len() as u64);
            for algorithm in [
                Algorithm::Md5,
                Algorithm::Sha256,
                Algorithm::Xxh3,
                Algorithm::Blake3,
            ] {
                assert_eq!(digests.get(algorithm), Some(&hash_bytes(algorithm, &data)));
            }
        }
    }
}
