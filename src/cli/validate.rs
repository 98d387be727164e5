//! `quire validate NAME`: re-hash every copy of a file now (or, with `--cached`,
//! let the node reuse a recent hash of a copy that did not change) and compare each
//! with the file's record.

use clap::Args;

use super::connection::ConnectionArgs;
use super::output::{human_size, print_json, print_table};
use crate::model::Timestamp;
use crate::protocol::validate::{FileValidationRequest, FileValidationResponseItem};

/// Options of `quire validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file's name.
    pub name: String,
    /// Let the node answer from a hash younger than its checksum_timeout, for copies
    /// whose size and modification time did not change since (fast for large
    /// files, but blind to bytes that rotted in place).
    #[arg(long)]
    pub cached: bool,
    /// Print the rows as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Runs `quire validate`; fails if any copy does not match or is missing.
pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let request = FileValidationRequest {
            file_name: args.name.clone(),
            fresh: !args.cached,
            local_only: false,
        };
        let rows = client.validate_file(&request).await?;
        let (bad, unreachable) = tally(&rows);
        if args.json {
            print_json(&rows)?;
        } else if rows.is_empty() {
            println!("{} has no available copy to validate", args.name);
        } else {
            let now = Timestamp::now();
            let table: Vec<Vec<String>> = rows.iter().map(|row| table_row(row, now)).collect();
            print_table(
                &[
                    "RESULT",
                    "LIBRARIAN",
                    "STORE",
                    "INSTANCE",
                    "SIZE",
                    "CHECKED",
                    "CURRENT CHECKSUM",
                ],
                &table,
            );
        }
        if !args.cached && rows.iter().any(|r| r.cached.is_none()) {
            eprintln!(
                "warning: the node did not say whether it re-hashed the copies (an older \
                 quire or another librarian); its answers may come from earlier hashes"
            );
        }
        if bad == 0 && unreachable > 0 {
            anyhow::bail!(
                "{unreachable} remote copies of {} could not be checked (UNREACHABLE above); \
                 check that their librarians are up and known to the node \
                 (quire librarians list --ping), then validate again",
                args.name
            );
        }
        if bad > 0 {
            anyhow::bail!(
                "{bad} of {} copies of {} do not match their record (MISMATCH above); the \
                 node recorded them as corrupt: restore them from a good copy",
                rows.len(),
                args.name
            );
        }
        Ok(())
    })
}

/// How many copies do not match their record, and how many could not be checked
/// (a row marked unreachable counts there only, whatever else it says).
fn tally(rows: &[FileValidationResponseItem]) -> (usize, usize) {
    let unreachable = rows.iter().filter(|r| r.unreachable.is_some()).count();
    let bad = rows
        .iter()
        .filter(|r| !r.computed_same_checksum && r.unreachable.is_none())
        .count();
    (bad, unreachable)
}

fn table_row(row: &FileValidationResponseItem, now: Timestamp) -> Vec<String> {
    let result = if row.computed_same_checksum {
        "ok"
    } else if row.unreachable.is_some() {
        "UNREACHABLE"
    } else if row.current_checksum.is_empty() {
        "MISSING"
    } else {
        "MISMATCH"
    };
    vec![
        result.to_string(),
        row.librarian.clone(),
        // A librarian that does not name its stores is shown by store id.
        row.store_name
            .clone()
            .unwrap_or_else(|| format!("id {}", row.store)),
        row.instance_id.to_string(),
        human_size(row.current_size),
        checked(row.cached, row.computed_time, now),
        if let Some(reason) = &row.unreachable {
            format!("- ({reason})")
        } else if row.current_checksum.is_empty() {
            "-".to_string()
        } else {
            row.current_checksum.clone()
        },
    ]
}

/// "fresh" or "cached", and when: `cached 2026-11-22 06:34:31 UTC (3 h ago)`.
fn checked(cached: Option<bool>, at: Option<Timestamp>, now: Timestamp) -> String {
    let how = match cached {
        Some(true) => "cached",
        Some(false) => "fresh",
        None => "?",
    };
    match at {
        Some(at) => {
            let when = at.to_wire()[..19].replace('T', " ");
            format!("{how} {when} UTC ({})", age(at, now))
        }
        None => how.to_string(),
    }
}

/// A short human age: `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn age(at: Timestamp, now: Timestamp) -> String {
    let seconds = (now.as_micros() - at.as_micros()).max(0) / 1_000_000;
    match seconds {
        0 => "just now".to_string(),
        1..=59 => format!("{seconds} s ago"),
        60..=3599 => format!("{} min ago", seconds / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_rows_are_counted_apart_whatever_they_claim() {
        let row = |same: bool, unreachable: Option<&str>| FileValidationResponseItem {
            librarian: "l".into(),
            store: 1,
            instance_id: 1,
            original_checksum: String::new(),
            original_size: 0,
            current_checksum: String::new(),
            current_size: 0,
            computed_same_checksum: same,
            store_name: None,
            cached: None,
            computed_time: None,
            unreachable: unreachable.map(str::to_string),
        };
        let rows = [
            row(true, None),
            row(false, None),
            row(false, Some("down")),
            row(true, Some("a peer's row claiming both")),
        ];
        assert_eq!(tally(&rows), (1, 2));
    }

    #[test]
    fn says_how_and_when_a_copy_was_checked() {
        let now = Timestamp::parse("2026-11-22T09:00:00").unwrap();
        let at = Timestamp::parse("2026-11-22T06:34:31.5").unwrap();
        assert_eq!(
            checked(Some(true), Some(at), now),
            "cached 2026-11-22 06:34:31 UTC (2 h ago)"
        );
        assert_eq!(
            checked(Some(false), Some(now), now),
            "fresh 2026-11-22 09:00:00 UTC (just now)"
        );
        assert_eq!(checked(None, None, now), "?");
        assert_eq!(age(now.plus_micros(-90_000_000), now), "1 min ago");
    }
}
