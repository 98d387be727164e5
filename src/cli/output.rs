//! Presentation helpers: human-readable sizes, aligned tables, JSON output and
//! progress bars that appear only on a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

mod rate;
use rate::{RateKey, Unit};

/// Bytes in IEC units with one decimal (`1.5 GiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `count` and the noun in its number: `1 file`, `2 files`.
pub fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// A rate in bytes per second.
pub fn human_rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    format!("{}/s", human_size((bytes as f64 / seconds) as u64))
}

/// Whether a JSON document was printed on stdout (see `failure::report`).
static JSON_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    note_json_printed();
    println!("{text}");
    Ok(())
}

/// Records that the command has begun its JSON document on stdout.
pub fn note_json_printed() {
    JSON_PRINTED.store(true, Ordering::Relaxed);
}

/// Whether the command has printed (or begun) its JSON document on stdout.
pub fn json_was_printed() -> bool {
    JSON_PRINTED.load(Ordering::Relaxed)
}

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let table = Table::new(header, rows.to_vec());
    table.print_header();
    table.print_rows(rows);
}

/// Columns sized once, from a header and a first set of rows, so that rows that
/// arrive later (a long listing, page by page) line up with them.
pub struct Table {
    header: Vec<String>,
    widths: Vec<usize>,
}

impl Table {
    /// Columns as wide as the widest of `header` and `sample` in each.
    pub fn new(header: &[&str], sample: Vec<Vec<String>>) -> Table {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &sample {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            widths,
        }
    }

    /// Prints the header line.
    pub fn print_header(&self) {
        self.print_line(&self.header);
    }

    /// Prints rows; a cell wider than its column pushes the rest of its row right.
    pub fn print_rows(&self, rows: &[Vec<String>]) {
        for row in rows {
            self.print_line(row);
        }
    }

    fn print_line(&self, cells: &[String]) {
        let padded: Vec<String> = cells
            .iter()
            .zip(&self.widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    }
}

/// A byte-counting progress bar on stderr, hidden unless stderr is a terminal. Its
/// rate and time left are smoothed and appear after a warm-up (see `rate.rs`); it
/// redraws on its own, so a stall shows as a falling rate.
pub fn bytes_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    progress_bar(
        total,
        message,
        quiet,
        "{msg:12} [{bar:30}] {bytes}/{total_bytes} {rate}",
        Unit::Bytes,
    )
}

/// A counting progress bar for many files.
pub fn items_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    progress_bar(
        total,
        message,
        quiet,
        "{msg:12} [{bar:30}] {pos}/{len} files {rate}",
        Unit::Files,
    )
}

/// How often a visible bar redraws when nothing else moves it.
const REDRAW_EVERY: Duration = Duration::from_millis(250);

fn progress_bar(total: u64, message: &str, quiet: bool, template: &str, unit: Unit) -> ProgressBar {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .with_key("rate", RateKey::new(unit))
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    if !bar.is_hidden() {
        bar.enable_steady_tick(REDRAW_EVERY);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }
}
