//! Timing child processes (wall clock, their CPU time and the node's), and the
//! summary: medians, the ratio of quire's throughput to the baseline's, a verdict.

use std::process::{Command, Stdio};
use std::time::Instant;

use super::node::Node;

/// The work one run does, to turn seconds into throughput.
pub struct Work {
    /// How much per run, in `unit`s.
    pub amount: f64,
    /// `MiB`, `files`, ...
    pub unit: &'static str,
}

impl Work {
    pub fn rate(&self, seconds: f64) -> String {
        let per_second = self.amount / seconds.max(1e-9);
        if per_second >= 100.0 {
            format!("{per_second:.0} {}/s", self.unit)
        } else {
            format!("{per_second:.1} {}/s", self.unit)
        }
    }
}

/// One timed run of a child process.
pub struct Run {
    /// Wall-clock seconds from spawn to exit.
    pub wall: f64,
    /// User + system CPU seconds of the child and the processes it waited for.
    pub cpu: f64,
    /// CPU seconds the node used meanwhile, when a node was involved.
    pub node_cpu: Option<f64>,
    pub stdout: String,
}

/// Syncs (untimed, so earlier writes are not charged to this run), then runs
/// `command` to completion and times it. Panics if it fails: a failed run measures
/// nothing.
pub fn run_timed(label: &str, command: &mut Command, node: Option<&Node>) -> Run {
    rustix::fs::sync();
    let cpu_before = children_cpu_seconds();
    let node_before = node.map(Node::cpu_seconds);
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {label}: {e}"));
    let wall = started.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds() - cpu_before;
    let node_cpu = node
        .zip(node_before)
        .map(|(n, before)| n.cpu_seconds() - before);
    if !output.status.success() {
        panic!(
            "{label} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Run {
        wall,
        cpu,
        node_cpu,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// CPU seconds used by all waited-for children of this process so far.
fn children_cpu_seconds() -> f64 {
    cpu_seconds(libc::RUSAGE_CHILDREN)
}

/// CPU seconds used by this process (all its threads) so far.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(libc::RUSAGE_SELF)
}

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only writes to it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    unsafe { libc::getrusage(who, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The runs of one side.
pub struct Series {
    /// Short name of the side, e.g. `quire network`.
    pub name: &'static str,
    /// What it runs, for the summary.
    pub command: &'static str,
    pub seconds: Vec<f64>,
}

impl Series {
    pub fn new(name: &'static str, command: &'static str) -> Series {
        Series {
            name,
            command,
            seconds: Vec::new(),
        }
    }

    /// Records a run and prints its line.
    pub fn record(&mut self, run: &Run, work: &Work) {
        self.seconds.push(run.wall);
        let cpu = match run.node_cpu {
            Some(node) => format!(
                "cpu {:.2} s (client {:.2} s + node {node:.2} s)",
                run.cpu + node,
                run.cpu
            ),
            None => format!("cpu {:.2} s", run.cpu),
        };
        println!(
            "  {:<15} {:>7.2} s  {:>14}  {cpu}",
            self.name,
            run.wall,
            work.rate(run.wall)
        );
    }

    pub fn median(&self) -> f64 {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        }
    }

    fn spread(&self) -> (f64, f64) {
        let min = self.seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.seconds.iter().copied().fold(0.0, f64::max);
        (min, max)
    }

    fn line(&self, work: &Work) -> String {
        let (min, max) = self.spread();
        format!(
            "  {:<15} median {:>6.2} s  {:>14}  (runs {min:.2}..{max:.2} s)  {}",
            self.name,
            self.median(),
            work.rate(self.median()),
            self.command
        )
    }
}

/// Prints each side's median, each quire side's ratio to the baseline (throughput
/// over throughput, so higher is better and 1.0 means equal), and a verdict line
/// against `target`.
pub fn print_summary(work: &Work, baseline: &Series, quire: &[&Series], target: f64) {
    println!(
        "summary over {} pairs (ratio = quire throughput / baseline throughput; higher is \
         better, 1.0 = equal):",
        baseline.seconds.len()
    );
    println!("{}", baseline.line(work));
    let mut verdicts = Vec::new();
    for side in quire {
        let ratio = baseline.median() / side.median();
        let per_pair: Vec<f64> = baseline
            .seconds
            .iter()
            .zip(&side.seconds)
            .map(|(b, q)| b / q)
            .collect();
        let shown: Vec<String> = per_pair.iter().map(|r| format!("{r:.2}")).collect();
        println!("{}", side.line(work));
        println!(
            "  {:<15} ratio {ratio:.2} (per pair: {})",
            "",
            shown.join(" ")
        );
        let (low, high) = per_pair
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
        if (high - low) / ratio > 0.25 {
            println!(
                "  note: the per-pair ratios of {} spread over {:.0}% of the ratio; the \
                 machine was busy or the filesystem uneven, so trust the median less",
                side.name,
                (high - low) / ratio * 100.0
            );
        }
        let judged = if ratio >= target {
            "meets it"
        } else {
            "is BELOW it"
        };
        verdicts.push(format!("{} {ratio:.3} {judged}", side.name));
    }
    if baseline.seconds.len() < 3 {
        println!("  note: fewer than 3 pairs; the medians say little");
    }
    println!(
        "verdict (target ratio >= {target:.2}): {}",
        verdicts.join("; ")
    );
}
