//! Shared machinery of the benchmarks: settings from the environment, the scratch
//! directory, the machine facts printed at the top, random source data.
//!
//! Every benchmark drives the real `quire` binary as a user would (a `quire serve`
//! node and `quire upload` child processes) and compares it with a physical baseline
//! made of standard tools, interleaved run by run. Benchmarks print; they never assert
//! on timings.

pub mod api;
pub mod lean_http;
pub mod measure;
pub mod node;
pub mod peers;
pub mod tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Another quire binary to measure instead of the one cargo builds for the benchmark
/// (e.g. an older build, to compare before and after a change).
pub const BINARY_VAR: &str = "QUIRE_BENCH_BINARY";

/// The quire binary under test: `$QUIRE_BENCH_BINARY`, else the one cargo builds.
pub fn quire_binary() -> PathBuf {
    std::env::var_os(BINARY_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_quire")), PathBuf::from)
}

/// How many baseline/quire pairs to run.
pub const PAIRS_VAR: &str = "QUIRE_BENCH_PAIRS";
/// Parent of the scratch directory (else `$TMPDIR`, else cargo's target/tmp).
pub const DIR_VAR: &str = "QUIRE_BENCH_DIR";

/// A whole number from the environment, or `default`.
pub fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => parse_size(&text).unwrap_or_else(|| {
            panic!("{name}={text:?} is not a number (suffixes K, M, G allowed)")
        }),
        Err(_) => default,
    }
}

/// A byte count or a count with an optional binary suffix: `4096`, `4K`, `512M`, `1G`.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        _ => (text, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The scratch directory holding the sources, the baseline's outputs and the node's
/// data directory, so that all of them share one filesystem.
pub struct Scratch {
    dir: tempfile::TempDir,
    /// Where its parent came from, for the header.
    origin: String,
}

impl Scratch {
    /// Creates `quire-bench-*` under `$QUIRE_BENCH_DIR`, `$TMPDIR` or cargo's target/tmp.
    pub fn new() -> Scratch {
        let (parent, origin) = [DIR_VAR, "TMPDIR"]
            .iter()
            .find_map(|var| {
                let value = std::env::var_os(var).filter(|v| !v.is_empty())?;
                Some((PathBuf::from(value), format!("${var}")))
            })
            .unwrap_or_else(|| {
                let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
                (target_tmp, "cargo's CARGO_TARGET_TMPDIR".to_string())
            });
        fs::create_dir_all(&parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        let dir = tempfile::Builder::new()
            .prefix("quire-bench-")
            .tempdir_in(&parent)
            .unwrap_or_else(|e| panic!("cannot create a scratch dir in {}: {e}", parent.display()));
        Scratch { dir, origin }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Removes the scratch directory and everything in it.
    pub fn finish(self) {
        let path = self.dir.path().to_path_buf();
        let started = Instant::now();
        make_writable(&path);
        match self.dir.close() {
            Ok(()) => println!(
                "removed {} ({:.1} s)",
                path.display(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => println!("could not remove {}: {e}", path.display()),
        }
    }
}

/// Prints the title and the facts that decide what the numbers mean.
pub fn print_header(title: &str, scratch: &Scratch) {
    println!("== quire benchmark: {title}");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    println!(
        "machine: nproc {cpus} ({model}), {:.1} GiB RAM, Linux {}",
        memory_kib as f64 / (1 << 20) as f64,
        read("/proc/sys/kernel/osrelease").trim()
    );
    println!("load average at start: {}", load_average());
    println!(
        "scratch: {} (under {})",
        scratch.path().display(),
        scratch.origin
    );
    println!("filesystem: {}", filesystem_facts(scratch.path()));
    println!(
        "quire: {} (${BINARY_VAR} to measure another)",
        quire_binary().display()
    );
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    let text = read("/proc/loadavg");
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Type, device, mount point, options and (for ext4) journal of the filesystem
/// holding `path`, from /proc/self/mounts.
fn filesystem_facts(path: &Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = read("/proc/self/mounts");
    let Some((device, mount_point, kind, options)) = mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 4 && path.starts_with(fields[1]))
                .then(|| (fields[0], fields[1], fields[2], fields[3]))
        })
        .max_by_key(|(_, mount_point, ..)| mount_point.len())
    else {
        return "unknown".into();
    };
    let mut facts = format!("{kind} on {device} mounted at {mount_point} ({options})");
    if kind == "ext4" {
        let name = device.rsplit('/').next().unwrap_or(device);
        let journalled = fs::read_dir("/proc/fs/jbd2")
            .map(|entries| {
                entries.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{name}-"))
                })
            })
            .unwrap_or(false);
        facts.push_str(if journalled {
            ", journal"
        } else {
            ", no journal"
        });
    }
    facts
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Gives the owner write permission on every directory under `path`.
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir()
            && let Ok(metadata) = entry.metadata()
        {
            let mode = metadata.permissions().mode() | 0o700;
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode));
        }
    }
}

/// Fast, good-enough random bytes (splitmix64), so sources do not compress or dedup.
pub struct RandomBytes(u64);

impl RandomBytes {
    pub fn new() -> RandomBytes {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5EED, |d| d.as_nanos() as u64);
        RandomBytes(seed ^ (std::process::id() as u64).rotate_left(32))
    }

    pub fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}
